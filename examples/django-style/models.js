// The model: a Message owned by a user, stored with TypeORM on SQLite (sql.js,
// WebAssembly: installs from npm alone, no native build). Its save hook is the
// django_sse pattern: after a row is inserted, tell its owner's browsers.
const { DataSource, EntitySchema, EventSubscriber } = require('typeorm');
const { sendEvent } = require('sse-hub');

const Message = new EntitySchema({
  name: 'Message',
  tableName: 'messages',
  columns: {
    id: { type: 'integer', primary: true, generated: true },
    owner: { type: 'varchar', length: 128 }, // a username, or `all` for everyone
    text: { type: 'text' },
    created: { type: 'datetime', createDate: true },
  },
});

/** HTML for one message, built (and escaped) on the server, as a Django template would. */
function renderMessage(message) {
  return `<li class="message" data-id="${message.id}">${escapeHtml(message.text)}</li>`;
}

/**
 * The "post_save" hook. Awaited by TypeORM, so when sendEvent rejects (the
 * broker is down) the save fails too instead of silently losing the event.
 */
class MessageSubscriber {
  listenTo() {
    return 'Message'; // the EntitySchema's name
  }

  async afterInsert(event) {
    const html = renderMessage(event.entity);
    await sendEvent('message', JSON.stringify({ type: 'foo', html }), event.entity.owner);
  }
}
// What the @EventSubscriber() decorator does, in plain JavaScript.
EventSubscriber()(MessageSubscriber);

/** An in-memory SQLite database (pass `location` and `autoSave: true` to keep it in a file). */
async function openDatabase() {
  const db = new DataSource({
    type: 'sqljs',
    entities: [Message],
    subscribers: [MessageSubscriber],
    synchronize: true,
  });
  await db.initialize();
  return db;
}

function escapeHtml(text) {
  return String(text).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

module.exports = { Message, MessageSubscriber, openDatabase, renderMessage, escapeHtml };

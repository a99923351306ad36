// sendEvent from a model hook: any ORM's "after save" callback can publish.
// Here a plain class stands in for the model; see examples/django-style for a TypeORM afterInsert hook.
const { sendEvent } = require('sse-hub');

class Comment {
  constructor(author, text) {
    this.author = author;
    this.text = text;
  }

  async save() {
    // ... write to the database, then tell the author's browsers:
    await sendEvent('message', { type: 'comment', text: this.text }, this.author);
    return this;
  }
}

module.exports = { Comment };

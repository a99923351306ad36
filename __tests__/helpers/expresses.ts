// The two Express majors the peer dependency promises (express@5 and the
// `express4` alias of express@4), for `describe.each(EXPRESSES)`.
import express5 from 'express';
import express4 from 'express4';

export type ExpressFactory = typeof express5;

/** [name, factory, major version] */
export const EXPRESSES: [string, ExpressFactory, number][] = [
  ['Express 5', express5, 5],
  ['Express 4', express4 as unknown as ExpressFactory, 4],
];

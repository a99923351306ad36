// The devDependency alias `express4` (npm:express@^4) ships no types; the part
// of Express 4 the tests use has the same shape as Express 5's.
declare module 'express4' {
  import express from 'express';
  export default express;
}

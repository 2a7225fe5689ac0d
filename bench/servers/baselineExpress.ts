/** Baseline (B): a minimal Express 5 app, defaults untouched, answering the same JSON. The framework ceiling. */
import { createServer } from 'node:http';
import express from 'express';
import { FIXED_BODY, listenAndAnnounce } from './announce.ts';

const fixed = JSON.parse(FIXED_BODY) as object;
const app = express();
app.get('/', (_req, res) => {
  res.json(fixed);
});
await listenAndAnnounce(createServer(app));

import { afterAll } from 'vitest';
import { removeTempDirs } from './temp.js';

// Registered before the file's own hooks, so it runs after them (vitest runs after-hooks as a stack): a bridge the file
// stops in its afterAll is gone before its ledger folder is removed.
afterAll(removeTempDirs);

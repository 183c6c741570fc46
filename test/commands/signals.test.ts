import { afterEach, describe, expect, it } from 'vitest';
import { toggleDebugOnSignal } from '../../src/commands/signals.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { LogCapture } from '../support/bridge.js';
import { waitFor } from '../support/kafka.js';

describe('SIGUSR2: debug logging on a running process', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  it('switches between the configured level and debug, children included, and says so at warn', async () => {
    const logs = new LogCapture();
    const logger = createLogger('info', logs);
    // Made before the switch, as the bridge's components are.
    const child = logger.child({ component: 'pipeline' });
    stop = toggleDebugOnSignal(logger, 'info');

    child.debug('event matched no rule');
    expect(logs.text).not.toContain('matched no rule');

    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => logger.level === 'debug', { what: 'the level to become debug' });
    child.debug('event matched no rule');
    expect(logs.records()).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'log level changed from info to debug', to: 'debug' }),
      expect.objectContaining({ level: 'debug', msg: 'event matched no rule', component: 'pipeline' }),
    ]);

    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => logger.level === 'info', { what: 'the level to go back to info' });
    child.debug('event matched no rule');
    expect(logs.records().slice(2)).toEqual([
      expect.objectContaining({ level: 'warn', msg: 'log level changed from debug to info', to: 'info' }),
    ]);
  });

  it('from debug, switches to info and back', async () => {
    const logs = new LogCapture();
    const logger = createLogger('debug', logs);
    stop = toggleDebugOnSignal(logger, 'debug');
    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => logger.level === 'info', { what: 'the level to become info' });
    expect(logs.records()).toEqual([
      expect.objectContaining({ msg: 'log level changed from debug to info' }),
    ]);
  });

  it('from error, the change to debug is still logged', async () => {
    const logs = new LogCapture();
    const logger = createLogger('error', logs);
    stop = toggleDebugOnSignal(logger, 'error');
    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => logger.level === 'debug', { what: 'the level to become debug' });
    process.kill(process.pid, 'SIGUSR2');
    await waitFor(() => logger.level === 'error', { what: 'the level to go back to error' });
    expect(logs.records().map((r) => r['msg'])).toEqual([
      'log level changed from error to debug',
      'log level changed from debug to error',
    ]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { PauseReason } from '../../src/health.js';
import { probeRoutes, type ProbeState } from '../../src/http/probes.js';
import { AdminServer } from '../../src/http/server.js';

describe('admin server probes', () => {
  let server: AdminServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function serve(state: ProbeState) {
    server = await AdminServer.start({ host: '127.0.0.1', port: 0, routes: probeRoutes(() => state) });
    const get = async (path: string) => {
      const response = await fetch(`${server?.url}${path}`);
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    return get;
  }

  const base: ProbeState = {
    crashed: undefined,
    joined: true,
    stopping: false,
    disconnected: undefined,
    paused: undefined,
  };

  it('is alive and ready when in the group and not paused', async () => {
    const get = await serve(base);
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'alive' } });
    expect(await get('/readyz')).toEqual({ status: 200, body: { ready: true } });
    expect((await get('/nope')).status).toBe(404);
  });

  it('says why it is not ready', async () => {
    const paused: PauseReason = {
      code: 'GENESYS_FORBIDDEN',
      message: 'role lacks a permission',
      since: new Date(0),
    };
    expect((await (await serve({ ...base, paused }))('/readyz')).body).toEqual({
      ready: false,
      code: 'GENESYS_FORBIDDEN',
      message: 'role lacks a permission',
      since: '1970-01-01T00:00:00.000Z',
    });
    await server?.close();
    expect(await (await serve({ ...base, joined: false }))('/readyz')).toMatchObject({
      status: 503,
      body: { code: 'NOT_IN_GROUP' },
    });
  });

  it('is not ready while the broker is unreachable, unless stopping', async () => {
    const disconnected = { reason: 'kafkajs lost the broker', since: new Date(0) };
    expect(await (await serve({ ...base, joined: false, disconnected }))('/readyz')).toEqual({
      status: 503,
      body: {
        ready: false,
        code: 'KAFKA_UNREACHABLE',
        message: 'kafkajs lost the broker',
        since: '1970-01-01T00:00:00.000Z',
      },
    });
    await server?.close();
    expect(await (await serve({ ...base, disconnected, stopping: true }))('/readyz')).toMatchObject({
      status: 503,
      body: { code: 'STOPPING' },
    });
  });

  it('is not alive once the consumer crashed for good', async () => {
    const get = await serve({ ...base, crashed: new Error('The group coordinator is not available') });
    expect(await get('/healthz')).toMatchObject({ status: 503, body: { code: 'KAFKA_CONSUMER_CRASHED' } });
    expect(await get('/readyz')).toMatchObject({ status: 503, body: { code: 'KAFKA_CONSUMER_CRASHED' } });
  });
});

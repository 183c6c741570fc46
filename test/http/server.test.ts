import { afterEach, describe, expect, it } from 'vitest';
import type { PauseReason } from '../../src/health.js';
import { bearerProtected } from '../../src/http/auth.js';
import { probeRoutes, type ProbeState } from '../../src/http/probes.js';
import { AdminServer, type Route } from '../../src/http/server.js';
import { Secret } from '../../src/secret.js';

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

describe('admin server /deliveries token', () => {
  let server: AdminServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const TOKEN = 'the-admin-token-0123456789';
  const history: Route = () => ({ status: 200, body: { deliveries: [] } });

  async function serve(token: Secret | undefined) {
    server = await AdminServer.start({
      host: '127.0.0.1',
      port: 0,
      routes: {
        ...probeRoutes(() => ({
          crashed: undefined,
          joined: true,
          stopping: false,
          paused: undefined,
          disconnected: undefined,
        })),
        '/metrics': () => ({ status: 200, body: '# metrics\n' }),
        '/deliveries': bearerProtected(token, history, { variable: 'ADMIN_TOKEN' }),
      },
    });
    return async (path: string, authorization?: string) => {
      const response = await fetch(`${server?.url}${path}`, {
        headers: authorization === undefined ? {} : { authorization },
      });
      const text = await response.text();
      return {
        status: response.status,
        challenge: response.headers.get('www-authenticate'),
        body: response.headers.get('content-type')?.startsWith('application/json')
          ? (JSON.parse(text) as Record<string, unknown>)
          : text,
      };
    };
  }

  it('serves the delivery history only with the right bearer token', async () => {
    const get = await serve(new Secret(TOKEN));
    expect(await get('/deliveries?rule=r', `Bearer ${TOKEN}`)).toMatchObject({
      status: 200,
      body: { deliveries: [] },
    });
    expect(await get('/deliveries?rule=r', `bearer ${TOKEN}`)).toMatchObject({ status: 200 });
    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
      'Bearer ',
    ]) {
      const answer = await get('/deliveries?rule=r', authorization);
      expect(answer, String(authorization)).toMatchObject({ status: 401, body: { code: 'UNAUTHORIZED' } });
      expect(answer.challenge).toMatch(/^Bearer /);
      expect(JSON.stringify(answer.body)).not.toContain(TOKEN);
    }
  });

  it('keeps probes and metrics open', async () => {
    const get = await serve(new Secret(TOKEN));
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
    expect(await get('/metrics')).toMatchObject({ status: 200, body: '# metrics\n' });
  });

  it('is off, saying how to turn it on, when no token is set', async () => {
    const get = await serve(undefined);
    for (const authorization of [undefined, 'Bearer anything-at-all-here', 'Bearer undefined']) {
      expect(await get('/deliveries?rule=r', authorization)).toMatchObject({
        status: 403,
        body: { code: 'ADMIN_TOKEN_NOT_SET', message: expect.stringContaining('set ADMIN_TOKEN') as unknown },
      });
    }
    expect((await get('/healthz')).status).toBe(200);
  });
});

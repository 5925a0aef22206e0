/** Message signing, connection files and history queries, without a kernel. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { child, decode, encode, InvalidMessage, Signer } from '../../kernel/wire.js';
import { endpoint, parseConnectionInfo } from '../../kernel/connection.js';
import { History } from '../../kernel/history.js';

const info = { transport: 'tcp', ip: '127.0.0.1', shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5, key: 'k', signature_scheme: 'hmac-sha256' };

describe('wire protocol', () => {
  it('round-trips a signed message and keeps routing identities', () => {
    const s = new Signer('secret', 'sha256');
    const msg = child(undefined, 'execute_request', { code: '1' }, 'sess', [Buffer.from('client-1')]);
    const back = decode(encode(msg, s), new Signer('secret', 'sha256'));
    assert.deepEqual(back.identities, [Buffer.from('client-1')]);
    assert.deepEqual(back.content, { code: '1' });
    assert.equal(back.header.msg_type, 'execute_request');
  });

  it('rejects a wrong key, a replay and malformed frames', () => {
    const frames = encode(child(undefined, 'kernel_info_request', {}, 's'), new Signer('secret', 'sha256'));
    assert.throws(() => decode(frames, new Signer('other', 'sha256')), InvalidMessage);
    const verifier = new Signer('secret', 'sha256');
    decode(frames, verifier);
    assert.throws(() => decode(frames, verifier), /duplicate signature/);
    assert.throws(() => decode([Buffer.from('x')], verifier), /no <IDS\|MSG> delimiter/);
    assert.throws(() => decode([Buffer.from('<IDS|MSG>'), Buffer.from('')], verifier), /expected 5 frames after the delimiter, got 1/);
  });

  it('accepts unsigned messages when the key is empty, as the spec allows', () => {
    const frames = encode(child(undefined, 'kernel_info_request', {}, 's'), new Signer('', 'sha256'));
    assert.equal(frames[1]!.toString(), '');
    assert.equal(decode(frames, new Signer('', 'sha256')).header.msg_type, 'kernel_info_request');
  });
});

describe('connection files', () => {
  it('reads addresses, ports and the signature scheme', () => {
    const c = parseConnectionInfo(info);
    assert.equal(c.digest, 'sha256');
    assert.equal(endpoint(c, 'hb'), 'tcp://127.0.0.1:5');
    assert.equal(endpoint({ ...c, ip: '::1' }, 'shell'), 'tcp://[::1]:1');
    assert.equal(endpoint({ ...c, transport: 'ipc', ip: '/tmp/k' }, 'iopub'), 'ipc:///tmp/k-2');
  });

  it('names the bad field and what it expected', () => {
    assert.throws(() => parseConnectionInfo({ ...info, shell_port: 'x' }), /"shell_port" must be an integer port in 0\.\.65535; got "x"/);
    assert.throws(() => parseConnectionInfo({ ...info, signature_scheme: 'rsa' }), /"signature_scheme" must be one of hmac-sha256/);
    assert.throws(() => parseConnectionInfo({ ...info, transport: 'udp' }), /"transport" must be "tcp" or "ipc"/);
  });
});

describe('history', () => {
  const h = new History();
  ['6 * 7', 'const x = 1', '6 * 7', 'plot.line([1])'].forEach((code, i) => h.add(i + 1, code));
  h.setOutput(1, '42');

  it('answers tail, range and glob search like IPython', () => {
    assert.deepEqual(h.query({ hist_access_type: 'tail', n: 2 }).map((r) => r[2]), ['6 * 7', 'plot.line([1])']);
    assert.deepEqual(h.query({ hist_access_type: 'range', session: 0, start: 2, stop: 3 }), [[1, 2, 'const x = 1']]);
    assert.deepEqual(h.query({ hist_access_type: 'range', session: -1, start: 1 }), []);
    assert.deepEqual(h.query({ hist_access_type: 'search', pattern: '6 * 7', unique: true }).map((r) => r[1]), [3]);
    assert.deepEqual(h.query({ hist_access_type: 'search', pattern: 'plot.*(?1?)' }).length, 1);
    assert.deepEqual(h.query({ hist_access_type: 'tail', n: 4, output: true })[0], [1, 1, ['6 * 7', '42']]);
    assert.throws(() => h.query({ hist_access_type: 'all' as never }), /hist_access_type must be "tail", "range" or "search"/);
  });
});

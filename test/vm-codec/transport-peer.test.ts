/**
 * VmCodecTransport against a scripted loopback peer, for the faults a real
 * ipmi_sim cannot be made to produce on demand: corrupted frames, responses
 * with the wrong sequence number, over-long responses, a peer that never
 * greets. The live behaviour against ipmi_sim itself is in live.test.ts.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { IpmiTimeoutError, IpmiTransportError } from '../../ipmi-kcs/errors.js';
import {
  VmFrameDecoder, encodeVmControl, openVmCodecTransport, vmChecksum, vmEscape, type VmCodecTransport,
} from '../../ipmi-kcs/vm-codec.js';
import { freeTcpPort } from '../harness/ipmi-sim.js';

interface PeerRequest { seq: number; netFn: number; lun: number; cmd: number; data: number[] }
type Reply = (sock: Socket, r: PeerRequest) => void;

/** Frames a response the way ipmi_sim's vm_send() does. */
function responseFrame(seq: number, netFn: number, lun: number, cmd: number, cc: number, data: number[], corrupt = false): Uint8Array {
  const body = [seq, ((netFn | 1) << 2) | lun, cmd, cc, ...data];
  const csum = (vmChecksum(body) ^ (corrupt ? 0x01 : 0)) & 0xff;
  return Uint8Array.from([...vmEscape([...body, csum]), 0xa0]);
}

interface Peer {
  server: Server;
  port: number;
  received: Array<{ type: string; bytes: number[] }>;
  sockets: Socket[];
  close(): Promise<void>;
}

async function startPeer(opts: { greet?: boolean; closeOnAccept?: boolean; reply?: Reply } = {}): Promise<Peer> {
  const received: Peer['received'] = [];
  const sockets: Socket[] = [];
  const reply: Reply = opts.reply ?? ((sock, r) => sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, [0x42])));
  const server = createServer((sock) => {
    sockets.push(sock);
    sock.on('error', () => undefined);
    if (opts.closeOnAccept) {
      sock.destroy();
      return;
    }
    if (opts.greet !== false) sock.write(Uint8Array.from([0xff, 0x01, 0xa1, 0x00, 0xa1]));
    const dec = new VmFrameDecoder();
    sock.on('data', (chunk) => {
      for (const f of dec.push(chunk)) {
        if (f.type === 'overflow') continue;
        received.push({ type: f.type, bytes: [...f.bytes] });
        if (f.type === 'message') {
          const b = f.bytes;
          reply(sock, { seq: b[0]!, netFn: b[1]! >> 2, lun: b[1]! & 3, cmd: b[2]!, data: [...b.subarray(3, b.length - 1)] });
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  assert.ok(addr && typeof addr === 'object');
  return {
    server,
    port: addr.port,
    received,
    sockets,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('VmCodecTransport against a scripted peer', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  const open = async (peer: Peer, extra: Partial<Parameters<typeof openVmCodecTransport>[0]> = {}): Promise<VmCodecTransport> => {
    const t = await openVmCodecTransport({ host: '127.0.0.1', port: peer.port, connectTimeoutMs: 1000, ...extra });
    cleanup.push(() => t.close());
    return t;
  };
  const peerWith = async (opts: Parameters<typeof startPeer>[0]): Promise<Peer> => {
    const p = await startPeer(opts);
    cleanup.push(() => p.close());
    return p;
  };

  it('answers the greeting with version 1 and capabilities 0 (this host cannot power off, reset or take IRQs)', async () => {
    const peer = await peerWith({});
    const t = await open(peer);
    await t.send({ netFn: 6, cmd: 1 });
    assert.deepEqual(peer.received.slice(0, 2), [{ type: 'control', bytes: [0xff, 0x01] }, { type: 'control', bytes: [0x08, 0x00] }]);
    assert.equal(t.events().version, 1);
    assert.equal(t.events().controls[0x00], 1, 'the clear-attention control was recorded');
  });

  it('sends data bytes 0xA0 0xA1 0xAA escaped and the peer sees them intact', async () => {
    const peer = await peerWith({});
    const t = await open(peer);
    await t.send({ netFn: 6, cmd: 0x45, data: [0x05, 0xa0, 0xa1, 0xaa, 0x41] });
    const msg = peer.received.find((f) => f.type === 'message')!;
    assert.deepEqual(msg.bytes.slice(1, -1), [0x18, 0x45, 0x05, 0xa0, 0xa1, 0xaa, 0x41]);
  });

  it('drops a response with a bad checksum and takes the good one that follows', async () => {
    const peer = await peerWith({
      reply: (sock, r) => {
        sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, [0x66], true));
        sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, [0x42]));
      },
    });
    const t = await open(peer);
    const rsp = await t.send({ netFn: 6, cmd: 1 });
    assert.deepEqual([...rsp.data], [0x42]);
    assert.equal(t.events().badChecksum, 1);
  });

  it('drops responses whose seq, netFn or cmd is not the outstanding request\'s', async () => {
    const peer = await peerWith({
      reply: (sock, r) => {
        sock.write(responseFrame((r.seq + 1) & 0xff, r.netFn, r.lun, r.cmd, 0, [0x01]));
        sock.write(responseFrame(r.seq, 0x0a, r.lun, r.cmd, 0, [0x02]));
        sock.write(responseFrame(r.seq, r.netFn, r.lun, (r.cmd + 1) & 0xff, 0, [0x03]));
        sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0xcc, []));
      },
    });
    const t = await open(peer);
    const rsp = await t.send({ netFn: 6, cmd: 0x46, data: [1] });
    assert.equal(rsp.completionCode, 0xcc);
    assert.equal(rsp.data.length, 0);
    assert.equal(t.events().unmatched, 3);
  });

  it('truncates a response longer than the transport\'s limit and says so', async () => {
    const long = Array.from({ length: 40 }, (_, i) => i);
    const peer = await peerWith({ reply: (sock, r) => sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, long)) });
    const t = await open(peer, { limits: { maxRequestData: 38, maxResponseData: 16 } });
    const rsp = await t.send({ netFn: 6, cmd: 1 });
    assert.equal(rsp.truncated, true);
    assert.deepEqual([...rsp.data], long.slice(0, 16));
  });

  it('times out when no answer comes, and drops the late answer instead of giving it to the next request', async () => {
    let held: (() => void) | undefined;
    let first = true;
    const peer = await peerWith({
      reply: (sock, r) => {
        const send = (): void => void sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, [r.cmd]));
        if (first) {
          first = false;
          held = send;
        } else {
          held?.(); // the stale answer arrives just before the right one
          send();
        }
      },
    });
    const t = await open(peer);
    await assert.rejects(t.send({ netFn: 6, cmd: 0x41, data: [1, 0x40] }, { timeoutMs: 100 }), IpmiTimeoutError);
    const rsp = await t.send({ netFn: 6, cmd: 0x01 });
    assert.deepEqual([...rsp.data], [0x01], 'the answer belongs to the second request');
    assert.equal(t.events().unmatched, 1);
    assert.equal(t.stats().timeouts, 1);
  });

  it('rejects with ECONNRESET when the peer closes mid-request, and reconnects for the next request', async () => {
    let n = 0;
    const peer = await peerWith({
      reply: (sock, r) => {
        if (n++ === 0) sock.destroy();
        else sock.write(responseFrame(r.seq, r.netFn, r.lun, r.cmd, 0, [0x42]));
      },
    });
    const t = await open(peer);
    await assert.rejects(t.send({ netFn: 6, cmd: 1 }, { timeoutMs: 5000 }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.ok(['ECONNRESET', 'EPIPE'].includes(err.code), err.code);
      assert.match(err.message, /may or may not have been executed/);
      return true;
    });
    const rsp = await t.send({ netFn: 6, cmd: 1 });
    assert.equal(rsp.completionCode, 0);
    assert.equal(t.events().connects, 2);
  });

  it('reports a peer that closes right after accepting as a busy interface (EBUSY)', async () => {
    const peer = await peerWith({ closeOnAccept: true });
    await assert.rejects(openVmCodecTransport({ host: '127.0.0.1', port: peer.port, connectTimeoutMs: 1000 }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'EBUSY');
      assert.match(err.message, /one VM-codec client at a time/);
      return true;
    });
  });

  it('gives up with ETIMEDOUT on a peer that accepts but never sends the version greeting', async () => {
    const peer = await peerWith({ greet: false });
    await assert.rejects(openVmCodecTransport({ host: '127.0.0.1', port: peer.port, connectTimeoutMs: 150 }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'ETIMEDOUT');
      assert.match(err.message, /no version greeting/);
      return true;
    });
  });

  it('rejects with ECONNREFUSED when nothing listens on the port', async () => {
    const port = await freeTcpPort();
    await assert.rejects(openVmCodecTransport({ host: '127.0.0.1', port }), (err: unknown) => {
      assert.ok(err instanceof IpmiTransportError);
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.syscall, 'connect');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
  });

  it('sends no control reset (04) to the BMC: that would tell ipmi_sim the host was reset', async () => {
    const peer = await peerWith({});
    const t = await open(peer);
    await t.send({ netFn: 6, cmd: 1 });
    await t.close();
    assert.ok(!peer.received.some((f) => f.type === 'control' && f.bytes[0] === 0x04));
    assert.deepEqual([...encodeVmControl([0x04])], [0x04, 0xa1]);
  });
});

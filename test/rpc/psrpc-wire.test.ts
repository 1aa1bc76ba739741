import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EgressInfo, EgressStatus, ParticipantEgressRequest, EncodedFileType, EncodedFileOutput, WebEgressRequest, StopEgressRequest } from '@livekit/protocol';
import { Any } from '@bufbuild/protobuf';
import {
  ClaimRequest,
  ClaimResponse,
  claimRequestChannel,
  claimResponseChannel,
  decodeEnvelope,
  encodeEnvelope,
  EnvelopeError,
  formatChannel,
  newClientId,
  newRequestId,
  newServerId,
  PsrpcError,
  queueLockKey,
  Request,
  requestChannel,
  Response,
  responseChannel,
  sanitizeChannelPart,
  toWireError,
} from '../../main/rpc/psrpc/index.js';
import { ListActiveEgressResponse, StartEgressRequest, UpdateMetricsRequest } from '../../main/rpc/messages.js';
import { EgressHandler, EgressInternal, IOInfo } from '../../main/rpc/services.js';
import { EgressError, errAlreadyExists, errInvalidField } from '../../main/contracts/errors.js';

// Golden values: bytes and keys produced by the Go psrpc v0.7.2 and livekit/protocol for these messages.
const V = {
  request:
    '0a24747970652e676f6f676c65617069732e636f6d2f696e7465726e616c2e52657175657374126f0a105245515f6161616161616161616161611210434c495f626262626262626262626262188080a8b1e39fe7cb172080c8d7d188a0e7cb1742350a0f45475f6162636465666768696a6b6c5a220a1368747470733a2f2f6578616d706c652e636f6d4a0b080112076f75742e6d7034',
  lockKey: 'urRsF986UvkWOaCdAKQKPtCnu9/WO0NwynGQI1jd1rM=',
  claimRequest:
    '0a29747970652e676f6f676c65617069732e636f6d2f696e7465726e616c2e436c61696d5265717565737412290a105245515f61616161616161616161616112105352565f6363636363636363636363631d0000803f',
  claimResponse:
    '0a2a747970652e676f6f676c65617069732e636f6d2f696e7465726e616c2e436c61696d526573706f6e736512240a105245515f61616161616161616161616112105352565f636363636363636363636363',
  responseOk:
    '0a25747970652e676f6f676c65617069732e636f6d2f696e7465726e616c2e526573706f6e736512560a105245515f61616161616161616161616112105352565f63636363636363636363636318808cb5cfe59fe7cb173a260a0f45475f6162636465666768696a6b6c5080cadd9fe59fe7cb17900180cadd9fe59fe7cb17',
  responseErr:
    '0a25747970652e676f6f676c65617069732e636f6d2f696e7465726e616c2e526573706f6e736512550a105245515f61616161616161616161616112105352565f63636363636363636363636318808cb5cfe59fe7cb172a1565677265737320616c726561647920657869737473320e616c72656164795f657869737473',
};
const REQ = 'REQ_aaaaaaaaaaaa';
const CLI = 'CLI_bbbbbbbbbbbb';
const SRV = 'SRV_cccccccccccc';
const SENT = 1700000000000000000n;
const EXPIRY = 1700000010000000000n;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

function startReq(): StartEgressRequest {
  return new StartEgressRequest({
    egressId: 'EG_abcdefghijkl',
    request: {
      case: 'web',
      value: new WebEgressRequest({
        url: 'https://example.com',
        fileOutputs: [new EncodedFileOutput({ fileType: EncodedFileType.MP4, filepath: 'out.mp4' })],
      }),
    },
  });
}

test('Request envelope matches the Appendix A vector byte for byte', () => {
  const r = new Request({ requestId: REQ, clientId: CLI, sentAt: SENT, expiry: EXPIRY, rawRequest: startReq().toBinary() });
  const bytes = encodeEnvelope(Request, r);
  assert.equal(hex(bytes), V.request);
  assert.equal(queueLockKey(bytes), V.lockKey);
  const back = decodeEnvelope(Request, unhex(V.request));
  assert.equal(back.requestId, REQ);
  assert.equal(back.clientId, CLI);
  assert.equal(back.sentAt, SENT);
  assert.equal(back.expiry, EXPIRY);
  assert.equal(back.multi, false);
  const inner = StartEgressRequest.fromBinary(back.rawRequest);
  assert.equal(inner.egressId, 'EG_abcdefghijkl');
  assert.equal(inner.request.case, 'web');
  assert.equal(inner.request.value?.url, 'https://example.com');
  assert.equal(inner.request.case === 'web' ? inner.request.value.fileOutputs[0]?.filepath : '', 'out.mp4');
});

test('ClaimRequest / ClaimResponse envelopes match the vectors; affinity is a float32', () => {
  assert.equal(hex(encodeEnvelope(ClaimRequest, new ClaimRequest({ requestId: REQ, serverId: SRV, affinity: 1 }))), V.claimRequest);
  assert.equal(hex(new ClaimRequest({ affinity: 0.5 }).toBinary()), '1d0000003f');
  assert.equal(hex(encodeEnvelope(ClaimResponse, new ClaimResponse({ requestId: REQ, serverId: SRV }))), V.claimResponse);
  const c = decodeEnvelope(ClaimRequest, unhex(V.claimRequest));
  assert.equal(c.affinity, 1);
  assert.equal(c.serverId, SRV);
});

test('Response envelopes (success and error) match the vectors', () => {
  const info = new EgressInfo({
    egressId: 'EG_abcdefghijkl',
    status: EgressStatus.EGRESS_STARTING,
    startedAt: 1700000000500000000n,
    updatedAt: 1700000000500000000n,
  });
  const decoded = decodeEnvelope(Response, unhex(V.responseOk));
  const ok = new Response({ requestId: REQ, serverId: SRV, sentAt: decoded.sentAt, rawResponse: info.toBinary() });
  assert.equal(hex(encodeEnvelope(Response, ok)), V.responseOk);
  assert.equal(EgressInfo.fromBinary(decoded.rawResponse).egressId, 'EG_abcdefghijkl');
  assert.equal(decoded.error, '');

  const w = toWireError(errAlreadyExists());
  const err = new Response({ requestId: REQ, serverId: SRV, sentAt: decoded.sentAt, error: w.error, code: w.code });
  assert.equal(hex(encodeEnvelope(Response, err)), V.responseErr);
});

test('decodeEnvelope rejects bad protobuf and wrong types', () => {
  assert.throws(() => decodeEnvelope(Request, unhex(V.claimRequest)), EnvelopeError);
  assert.throws(() => decodeEnvelope(Response, unhex(V.request)), EnvelopeError);
  assert.throws(() => decodeEnvelope(Request, new Uint8Array([0xff, 0xff, 0xff, 0xff])), EnvelopeError);
  assert.throws(() => decodeEnvelope(Request, new Uint8Array([0x0a, 0x7f, 0x01])), EnvelopeError);
  // Resolution uses the text after the last '/', like Go's registry lookup.
  const other = new Any({ typeUrl: 'example.org/x/internal.ClaimResponse', value: new ClaimResponse({ requestId: REQ }).toBinary() }).toBinary();
  assert.equal(decodeEnvelope(ClaimResponse, other).requestId, REQ);
  // Field 3 (channel) and unknown fields are tolerated.
  const withChannel = Buffer.concat([Buffer.from(unhex(V.claimResponse)), Buffer.from('1a03616263', 'hex')]);
  assert.equal(decodeEnvelope(ClaimResponse, withChannel).serverId, SRV);
});

test('channel names follow psrpc Legacy naming (separator, empty parts, sanitization)', () => {
  assert.equal(requestChannel('EgressInternal', 'StartEgress', ''), 'EgressInternal|StartEgress|REQ');
  assert.equal(requestChannel('EgressInternal', 'StartEgress', undefined), 'EgressInternal|StartEgress|REQ');
  assert.equal(requestChannel('EgressInternal', 'StartEgress', []), 'EgressInternal|StartEgress|REQ');
  assert.equal(claimResponseChannel('EgressInternal', 'StartEgress', ''), 'EgressInternal|StartEgress|RCLAIM');
  assert.equal(requestChannel('EgressHandler', 'StopEgress', 'EG_xxxxxxxxxxxx'), 'EgressHandler|StopEgress|EG_xxxxxxxxxxxx|REQ');
  assert.equal(claimRequestChannel('EgressInternal', CLI), 'EgressInternal|CLI_bbbbbbbbbbbb|CLAIM');
  assert.equal(responseChannel('IOInfo', CLI), 'IOInfo|CLI_bbbbbbbbbbbb|RES');
  assert.equal(requestChannel('EgressInternal', 'StartEgress', 'my-cluster'), 'EgressInternal|StartEgress|myu+002dcluster|REQ');
  assert.equal(sanitizeChannelPart('a.b'), 'au+002eb');
  assert.equal(sanitizeChannelPart('é'), 'u+00e9');
  assert.equal(sanitizeChannelPart('😀'), 'U+0001f600');
  assert.equal(sanitizeChannelPart('\ud800'), 'u+fffd');
  assert.equal(sanitizeChannelPart('a|b'), 'au+007cb');
  assert.equal(requestChannel('S', 'M', ['a', '', 'b']), 'S|M|a|b|REQ');
  assert.equal(formatChannel('A', '', 'B'), 'A|B');
});

test('ids have psrpc format', () => {
  assert.match(newClientId(), /^CLI_[A-Za-z0-9]{12}$/);
  assert.match(newServerId(), /^SRV_[A-Za-z0-9]{12}$/);
  assert.match(newRequestId(), /^REQ_[A-Za-z0-9]{12}$/);
});

test('error encoding: codes kept, unknown for plain errors, never an empty message', () => {
  assert.deepEqual(toWireError(new PsrpcError('invalid_argument', 'bad url')), { error: 'bad url', code: 'invalid_argument', details: [] });
  const e = toWireError(errInvalidField('url'));
  assert.equal(e.code, 'invalid_argument');
  assert.equal(e.error, 'request has missing or invalid field: url');
  assert.equal(toWireError(new EgressError('E_INTERNAL', 'internal', 'x')).code, 'internal');
  assert.deepEqual(toWireError(new Error('boom')), { error: 'boom', code: 'unknown', details: [] });
  assert.equal(toWireError(new PsrpcError('not_found', '')).error, 'not_found');
  assert.equal(toWireError('str').error, 'str');
  assert.equal(PsrpcError.fromResponse('', 'x').code, 'unknown');
  assert.equal(PsrpcError.fromResponse('bogus', 'x').code, 'unknown');
  assert.equal(PsrpcError.fromResponse('unavailable', 'x').code, 'unavailable');
});

test('rpc.* messages carry the protocol field numbers', () => {
  const r = startReq();
  r.roomId = 'RM_1';
  r.roomName = 'room';
  r.token = 't';
  r.wsUrl = 'ws://x';
  r.cloudBackupEnabled = true;
  r.estimatedCpu = 1.5;
  r.retryCount = 2;
  const back = StartEgressRequest.fromBinary(r.toBinary());
  assert.ok(back.equals(r));
  const expected: Record<number, string> = {
    1: 'egress_id', 16: 'egress', 17: 'replay', 5: 'room_composite', 11: 'web', 13: 'participant',
    6: 'track_composite', 7: 'track', 3: 'room_id', 18: 'room_name', 8: 'token', 9: 'ws_url',
    10: 'cloud_backup_enabled', 14: 'estimated_cpu', 15: 'retry_count',
  };
  for (const [no, name] of Object.entries(expected)) assert.equal(StartEgressRequest.fields.find(Number(no))?.name, name);
  assert.equal(StartEgressRequest.fields.list().length, Object.keys(expected).length);
  // room_name (18) encodes with a two-byte tag 0x92 0x01.
  assert.ok(hex(new StartEgressRequest({ roomName: 'r' }).toBinary()).startsWith('920101'));
  assert.equal(StartEgressRequest.typeName, 'rpc.StartEgressRequest');
  assert.equal(hex(new ListActiveEgressResponse({ egressIds: ['a'] }).toBinary()), '0a0161');
  assert.equal(hex(new UpdateMetricsRequest({ avgCpuUsage: 1, maxCpuUsage: 0.5 }).toBinary()), '1d0000803f250000003f');
  const participant = new StartEgressRequest({ request: { case: 'participant', value: new ParticipantEgressRequest({ roomName: 'r' }) } });
  assert.equal(hex(participant.toBinary()), '6a03' + '0a0172');
});

test('service table routing matches protocol rpc/*.psrpc.go', () => {
  const flags = (m: { affinityEnabled: boolean; multi: boolean; requireClaim: boolean; queue: boolean }): boolean[] => [
    m.affinityEnabled,
    m.multi,
    m.requireClaim,
    m.queue,
  ];
  assert.deepEqual(flags(EgressInternal.StartEgress), [true, false, true, false]);
  assert.deepEqual(flags(EgressInternal.ListActiveEgress), [false, true, false, false]);
  assert.deepEqual(flags(EgressHandler.StopEgress), [false, false, true, true]);
  assert.deepEqual(flags(EgressHandler.UpdateStream), [false, false, true, true]);
  for (const m of Object.values(IOInfo)) assert.deepEqual(flags(m), [false, false, true, true]);
  assert.equal(EgressHandler.StopEgress.requestType.typeName, StopEgressRequest.typeName);
});

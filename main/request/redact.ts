import type { StreamOutput } from '@livekit/protocol';
import { redactStorageSecretsInPlace } from '../upload/resolve.js';
import type { EgressRequest } from './plan.js';
import { redactUrlForEcho } from './urls.js';

/**
 * The request as echoed in EgressInfo.request: a deep copy with upload secrets
 * replaced by placeholders (`{access_key}`, `{secret}`, `{session_token}`, `{external_id}`,
 * `{credentials}`, `{account_name}`, `{account_key}`), RTMP/mux/twitch stream keys redacted as
 * `{abc...xyz}`, and SRT/WebSocket query values redacted. The input is not modified.
 */
export function redactRequest(request: EgressRequest): EgressRequest {
  if (request.case === undefined) return { case: undefined };
  const copy = { case: request.case, value: request.value.clone() } as EgressRequest;
  redactStorageSecretsInPlace(copy.value);
  const streams = (s: StreamOutput | undefined): void => {
    if (s) s.urls = s.urls.map(redactUrlForEcho);
  };
  switch (copy.case) {
    case 'web':
    case 'roomComposite':
    case 'trackComposite':
      copy.value.streamOutputs.forEach(streams);
      if (copy.value.output.case === 'stream') streams(copy.value.output.value);
      break;
    case 'participant':
      copy.value.streamOutputs.forEach(streams);
      break;
    case 'egress':
    case 'replay':
      for (const o of copy.value.outputs) if (o.config.case === 'stream') streams(o.config.value);
      break;
    case 'track':
      if (copy.value.output.case === 'websocketUrl') copy.value.output.value = redactUrlForEcho(copy.value.output.value);
      break;
    default:
      break;
  }
  return copy;
}

/**
 * The typed error of every key service ({@link SifreDBKmsError}), the one place that words service
 * failures ({@link kmsServiceError}, used by every adapter), and the AWS SDK mapping ({@link kmsError}).
 * Messages are written here, never copied from anything that could hold key material or credentials
 * (AWS signature errors echo the signed request, which can include a session token), and service or
 * SDK errors are not attached as `cause` for the same reason.
 */
import { SifreDBError, type ErrorCode } from '../../errors.js';

/**
 * Why a key-service call failed, in service-independent terms. `unreachable`, `throttled` and
 * `service` are transient (a retry later may succeed); the others are refusals.
 */
export type KmsFailureReason =
  | 'unreachable'
  | 'throttled'
  | 'service'
  | 'denied'
  | 'credentials'
  | 'not-found'
  | 'disabled'
  | 'wrong-key'
  | 'invalid-ciphertext'
  | 'invalid-response'
  | 'refused';

const TRANSIENT_REASONS: ReadonlySet<KmsFailureReason> = new Set(['unreachable', 'throttled', 'service']);

/** A failed KMS call, or a keyring that KMS refuses to unwrap. `code` is `ERR_SIFREDB_KMS` or `ERR_SIFREDB_KEY`. */
export class SifreDBKmsError extends SifreDBError {
  /** The adapter's provider: `aws-kms`, `vault-transit`, `gcp-kms`, `azure-keyvault`, or `multi`. */
  readonly provider: string;
  /** The service operation, e.g. `Decrypt` (AWS), `decrypt` (Vault Transit). */
  readonly operation: string;
  /** Service-independent classification of the failure. */
  readonly reason: KmsFailureReason;
  /**
   * The service's own error name or code (`DisabledException`, `PERMISSION_DENIED`, Vault's HTTP
   * status text…), when the service answered. For AWS it equals {@link awsErrorName}.
   */
  readonly serviceErrorName: string | undefined;
  /** The AWS error name (`AccessDeniedException`, `DisabledException`…), when KMS answered. */
  readonly awsErrorName: string | undefined;
  /** The network error code (`ECONNREFUSED`, `ENOTFOUND`, `ETIMEDOUT`…) when KMS could not be reached. */
  readonly networkErrorCode: string | undefined;
  /** HTTP status of KMS's answer, when there was one. */
  readonly httpStatusCode: number | undefined;
  /** AWS request id, for AWS support and CloudTrail. */
  readonly requestId: string | undefined;
  /** Attempts the SDK made, retries included. */
  readonly attempts: number | undefined;
  /** `true` when retrying later may succeed (network, throttling, KMS-side errors). */
  readonly transient: boolean;
  /** For a keyring wrapped under several keys: each wrapping key's failure, in the order tried. */
  readonly failures: readonly SifreDBError[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    details: {
      provider?: string | undefined;
      operation: string;
      reason?: KmsFailureReason | undefined;
      serviceErrorName?: string | undefined;
      awsErrorName?: string | undefined;
      networkErrorCode?: string | undefined;
      httpStatusCode?: number | undefined;
      requestId?: string | undefined;
      attempts?: number | undefined;
      transient: boolean;
      failures?: readonly SifreDBError[] | undefined;
    },
  ) {
    super(code, message);
    this.provider = details.provider ?? 'aws-kms';
    this.operation = details.operation;
    this.reason = details.reason ?? (details.transient ? 'service' : code === 'ERR_SIFREDB_KEY' ? 'invalid-ciphertext' : 'refused');
    this.serviceErrorName = details.serviceErrorName ?? details.awsErrorName;
    this.awsErrorName = details.awsErrorName;
    this.networkErrorCode = details.networkErrorCode;
    this.httpStatusCode = details.httpStatusCode;
    this.requestId = details.requestId;
    this.attempts = details.attempts;
    this.transient = details.transient;
    this.failures = details.failures;
  }
}

/** Error codes of a key service that could not be reached (socket, DNS, undici), for every adapter. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'AbortError']);
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);
const KMS_SIDE = new Set(['KMSInternalException', 'DependencyTimeoutException', 'KeyUnavailableException', 'InternalFailure', 'ServiceUnavailable']);
const CREDENTIALS = new Set(['CredentialsProviderError', 'UnrecognizedClientException', 'InvalidSignatureException', 'IncompleteSignature', 'IncompleteSignatureException', 'ExpiredTokenException', 'InvalidClientTokenId', 'MissingAuthenticationToken']);

/** What was being done, for the message: "unwrapping version 3 of keyring x with key alias/y". */
export interface KmsCallDescription {
  operation: string;
  /** Human words for the action, e.g. `unwrapping version 2 of KMS keyring file:/x`. */
  action: string;
  /** The configured KMS key id / ARN / alias (not secret). */
  keyId: string;
  /** Where requests go, e.g. `https://kms.eu-west-1.amazonaws.com` or `region eu-west-1`. */
  target: string;
}

/** Maps anything the KMS client threw to a {@link SifreDBKmsError} with a self-contained message. */
export function kmsError(error: unknown, call: KmsCallDescription): SifreDBKmsError {
  if (error instanceof SifreDBKmsError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const metadata = (typeof e.$metadata === 'object' && e.$metadata !== null ? e.$metadata : {}) as Record<string, unknown>;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const errno = typeof e.code === 'string' ? e.code : undefined;
  const httpStatusCode = typeof metadata.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
  const requestId = typeof metadata.requestId === 'string' ? safeToken(metadata.requestId) : undefined;
  const attempts = typeof metadata.attempts === 'number' ? metadata.attempts : undefined;
  const fromAws = typeof e.$fault === 'string' || httpStatusCode !== undefined;
  const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  const base = { operation: call.operation, requestId, attempts, httpStatusCode };
  const what = `KMS ${call.operation} failed while ${call.action}`;

  if (!fromAws && ((errno && NETWORK_ERROR_CODES.has(errno)) || NETWORK_NAMES.has(name))) {
    const why = errno ?? name;
    return new SifreDBKmsError(
      'ERR_SIFREDB_KMS',
      `${what}: KMS unreachable at ${call.target} (${why})${tries}; check the network, endpoint and region. ` +
        'Keys already loaded keep working.',
      { ...base, networkErrorCode: why, reason: 'unreachable', transient: true },
    );
  }
  if (!fromAws) {
    if (name === 'CredentialsProviderError') {
      return new SifreDBKmsError(
        'ERR_SIFREDB_KMS',
        `${what}: no AWS credentials were found by the SDK's default provider chain (environment, shared config, SSO, instance or container role)`,
        { ...base, awsErrorName: name, reason: 'credentials', transient: false },
      );
    }
    return new SifreDBKmsError(
      'ERR_SIFREDB_KMS',
      `${what}: the KMS client failed before KMS answered (${safeAwsMessage(safeToken(name)) || 'Error'}${errno ? ` ${safeAwsMessage(safeToken(errno))}` : ''})${tries}`,
      { ...base, awsErrorName: undefined, networkErrorCode: errno, reason: 'refused', transient: false },
    );
  }

  const awsErrorName = safeToken(name).replace(LONG_TOKEN, redactLongToken);
  const awsMessage = CREDENTIALS.has(name) ? '' : safeAwsMessage(e.message);
  const detail = awsMessage ? `: ${awsMessage}` : '';
  const key = `KMS key ${call.keyId}`;
  let code: ErrorCode = 'ERR_SIFREDB_KMS';
  let transient = false;
  let reason: KmsFailureReason = 'refused';
  let hint: string;
  switch (name) {
    case 'AccessDeniedException':
      reason = 'denied';
      hint = `access denied to ${key}: allow kms:${call.operation} for this principal in the IAM and key policies, with the sifredb:keyring encryption context (docs/KMS.md); or the keyring was wrapped under another KMS key`;
      break;
    case 'IncorrectKeyException':
      reason = 'wrong-key';
      hint = `the keyring was wrapped under another KMS key than ${key}; configure that key, or rewrap the keyring`;
      break;
    case 'NotFoundException':
      reason = 'not-found';
      hint = `${key} was not found in ${call.target}; check the key id, alias and region`;
      break;
    case 'DisabledException':
      reason = 'disabled';
      hint = `${key} (or the key that wrapped this keyring) is disabled; re-enable it to read data encrypted under it`;
      break;
    case 'KMSInvalidStateException':
      reason = 'disabled';
      hint = `${key} (or the key that wrapped this keyring) is not usable in its current state, e.g. pending deletion; cancel the deletion and re-enable it to read data encrypted under it`;
      break;
    case 'InvalidCiphertextException':
      code = 'ERR_SIFREDB_KEY';
      reason = 'invalid-ciphertext';
      hint = 'KMS refused the wrapped key: the keyring entry was altered, or its keyring id or version does not match its encryption context';
      break;
    case 'InvalidKeyUsageException':
      hint = `${key} is not a symmetric ENCRYPT_DECRYPT key`;
      break;
    default:
      if (THROTTLING.has(name)) {
        transient = true;
        reason = 'throttled';
        hint = `throttled by KMS${tries}; lower the request rate or raise the KMS quota`;
      } else if (KMS_SIDE.has(name) || (httpStatusCode !== undefined && httpStatusCode >= 500)) {
        transient = true;
        reason = 'service';
        hint = `KMS-side error${tries}; retry later`;
      } else if (CREDENTIALS.has(name)) {
        reason = 'credentials';
        hint = 'AWS rejected the credentials or the request signature (invalid, expired, or the clock is off)';
      } else {
        hint = 'KMS refused the request';
      }
  }
  return new SifreDBKmsError(code, `${what}: ${hint} (${awsErrorName}${detail})`, { ...base, awsErrorName, reason, transient });
}

/** An identifier-like string from AWS, or `undefined`: no spaces, bounded length. */
function safeToken(value: string): string {
  return value.replace(/[^A-Za-z0-9._:/@+=-]/g, '').slice(0, 128);
}

/**
 * AWS's own message for errors whose messages are key ids and states (e.g. "arn:… is disabled."),
 * one line, bounded, with anything that looks like an access key id or a long token removed.
 */
function safeAwsMessage(message: unknown): string {
  if (typeof message !== 'string' || message === 'UnknownError') return '';
  return message
    .split('\n')[0]!
    .replace(/\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b/g, '[redacted]')
    // Vault tokens (hvs./hvb./hvr. and the older s./b./r. forms) and JWT-looking strings.
    .replace(/\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{16,}/g, '[redacted]')
    .replace(/\beyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]+)*/g, '[redacted]')
    .replace(LONG_TOKEN, redactLongToken)
    .slice(0, 300)
    .trim();
}

/**
 * Runs of 32 or more base64 / base64url / hex characters: the shape of key material (32 bytes are 43
 * or 44 characters of base64, 64 of hex), wrapped keys and tokens. A service or a proxy in front of
 * it may echo the request (an Encrypt request carries the data key) in its error.
 */
const LONG_TOKEN = /[A-Za-z0-9+/=_-]{32,}/g;
/** Path words of key names (AWS ARNs and aliases, Vault, Google Cloud KMS, Azure Key Vault). */
const KEY_PATH_WORDS = new Set(['key', 'keys', 'alias', 'transit', 'projects', 'locations', 'keyRings', 'cryptoKeys', 'cryptoKeyVersions']);
/** A UUID, or 32 hex digits with an optional `mrk-` (AWS multi-region key ids, Azure key versions). */
const KEY_ID_SEGMENT = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?:mrk-)?[0-9a-f]{32})$/;

/**
 * Keeps a long run that is a key name — `/`-separated segments, one of them a {@link KEY_PATH_WORDS}
 * word, each shorter than 32 characters or a key id ({@link KEY_ID_SEGMENT}) — such as
 * `key/1234abcd-…`, `projects/p/locations/l/keyRings/r/cryptoKeys/k`: services name those in their
 * messages and they are not secret. Anything else is replaced.
 */
function redactLongToken(run: string): string {
  const segments = run.split('/');
  const keyName = segments.some((s) => KEY_PATH_WORDS.has(s)) && segments.every((s) => s.length < 32 || KEY_ID_SEGMENT.test(s));
  return keyName ? run : '[redacted]';
}

/** What an adapter tells {@link kmsServiceError} about a failed call. */
export interface KmsServiceFailure {
  /** The adapter's provider, e.g. `vault-transit`. */
  provider: string;
  /** Service name for messages, e.g. `Vault Transit`, `Google Cloud KMS`. */
  service: string;
  /** The service operation, e.g. `decrypt`. */
  operation: string;
  /** Human words for the action, e.g. `unwrapping version 2 of KMS keyring file:/x`. */
  action: string;
  /** The configured key (not secret). */
  keyId: string;
  /** Where requests went: `https://vault:8200`; never credentials or query strings. */
  target: string;
  reason: KmsFailureReason;
  /** The service's error name or code, or the HTTP status (`HTTP 403`). */
  serviceErrorName?: string | undefined;
  httpStatusCode?: number | undefined;
  /** Network error code (`ECONNREFUSED`…) for `unreachable`. */
  networkErrorCode?: string | undefined;
  attempts?: number | undefined;
  requestId?: string | undefined;
  /**
   * The service's own words, when they are known to hold no secrets (key names, states). Cut to one
   * line and 300 characters; long tokens are redacted.
   */
  serviceMessage?: string | undefined;
  /** Overrides the standard hint for `reason`. */
  hint?: string | undefined;
}

/**
 * The error for a failed key-service call, worded the same way for every provider. `transient` follows
 * `reason`; `code` is `ERR_SIFREDB_KEY` for `invalid-ciphertext`, else `ERR_SIFREDB_KMS`.
 */
export function kmsServiceError(failure: KmsServiceFailure): SifreDBKmsError {
  const { service, operation, action, keyId, target, reason, attempts } = failure;
  const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
  const key = `${service} key ${keyId}`;
  const standard: Record<KmsFailureReason, string> = {
    unreachable: `${service} unreachable at ${target} (${safeAwsMessage(failure.networkErrorCode) || 'network error'})${tries}; check the network and address. Keys already loaded keep working.`,
    throttled: `throttled by ${service}${tries}; lower the request rate or raise the quota`,
    service: `${service}-side error${tries}; retry later`,
    denied: `access denied to ${key}: grant this identity the ${operation} permission on it (docs/KMS.md)`,
    credentials: `${service} rejected the credentials (missing, invalid or expired)`,
    'not-found': `${key} was not found at ${target}; check its name, path and location`,
    disabled: `${key} (or the key version that wrapped this keyring) is disabled, destroyed or not usable in its state; restore it to read data encrypted under it`,
    'wrong-key': `the keyring was wrapped under another key than ${key}; configure that key, or rewrap the keyring`,
    'invalid-ciphertext': `${service} refused the wrapped key: the keyring entry was altered, or its keyring id or version does not match its binding`,
    'invalid-response': `${service} returned an unexpected answer`,
    refused: `${service} refused the request`,
  };
  const names = [failure.serviceErrorName, safeAwsMessage(failure.serviceMessage)].filter((x) => x !== undefined && x !== '');
  const detail = names.length > 0 ? ` (${names.map((n) => safeAwsMessage(n)).join(': ')})` : '';
  return new SifreDBKmsError(
    reason === 'invalid-ciphertext' ? 'ERR_SIFREDB_KEY' : 'ERR_SIFREDB_KMS',
    `${service} ${operation} failed while ${action}: ${failure.hint ?? standard[reason]}${detail}`,
    {
      provider: failure.provider,
      operation,
      reason,
      serviceErrorName: failure.serviceErrorName === undefined ? undefined : safeToken(failure.serviceErrorName),
      networkErrorCode: failure.networkErrorCode,
      httpStatusCode: failure.httpStatusCode,
      requestId: failure.requestId === undefined ? undefined : safeToken(failure.requestId),
      attempts,
      transient: TRANSIENT_REASONS.has(reason),
    },
  );
}

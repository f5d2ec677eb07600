/**
 * How every Switchyard process (worker, client library, CLI) reaches Temporal: the address and
 * namespace, TLS and an API key (Temporal Cloud, or a cluster behind mTLS), and the payload codec.
 *
 * Read from the environment with Temporal's own loader (@temporalio/envconfig: TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE and the temporal.toml
 * profile file), plus the names the Temporal CLI uses for TLS files (TEMPORAL_TLS_CERT,
 * TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA and their *_DATA forms), so a shell set up for `temporal` works
 * for `switchyard` unchanged.
 */
import type { ConnectionOptions } from '@temporalio/client';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { EncryptionKeys } from '../security/encryptionKeys.js';
import { failureConverterPath } from '../security/failureConverterPath.js';

/** What a connection needs besides the address; holds secrets: never log it. */
export interface TemporalAccess {
  readonly tls?: NonNullable<ConnectionOptions['tls']>;
  readonly apiKey?: string;
  readonly metadata?: Record<string, string>;
  /** Set when payload encryption is on. */
  readonly codec?: PayloadCodec;
  /** The key id new payloads are encrypted with (shown, never the key). */
  readonly encryptionKeyId?: string;
  /** The keys behind the codec (the worker checks them against the namespace's runs at start). */
  readonly encryptionKeys?: EncryptionKeys;
  /** SWITCHYARD_ENCRYPTION_REQUIRED: the codec refuses plaintext payloads (the worker checks running runs for them at start). */
  readonly encryptionRequired?: boolean;
}

/** The Temporal CLI's TLS variable names, mapped onto the names @temporalio/envconfig reads. */
const CLI_TLS_ALIASES: ReadonlyArray<readonly [cli: string, envconfig: string]> = [
  ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CLIENT_CERT_PATH'],
  ['TEMPORAL_TLS_CERT_DATA', 'TEMPORAL_TLS_CLIENT_CERT_DATA'],
  ['TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CLIENT_KEY_PATH'],
  ['TEMPORAL_TLS_KEY_DATA', 'TEMPORAL_TLS_CLIENT_KEY_DATA'],
  ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH'],
  ['TEMPORAL_TLS_CA_DATA', 'TEMPORAL_TLS_SERVER_CA_CERT_DATA'],
];

export interface ClusterSettings {
  /** From TEMPORAL_ADDRESS or the profile; undefined means "start the embedded dev server". */
  readonly address?: string;
  readonly namespace?: string;
  readonly access: TemporalAccess;
}

/** The cluster the environment points at. Throws with the variable's name when a TLS file is unreadable. */
export function clusterSettingsFromEnv(env: Readonly<Record<string, string | undefined>>): ClusterSettings {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') vars[k] = v;
  for (const [cli, name] of CLI_TLS_ALIASES) {
    if (vars[cli] !== undefined && vars[name] === undefined) vars[name] = vars[cli];
  }
  const both = (a: string, b: string): boolean => vars[a] !== undefined || vars[b] !== undefined;
  if (both('TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CLIENT_CERT_DATA') !== both('TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_KEY_DATA')) {
    throw new Error('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together (mTLS needs the client certificate and its private key): set both or neither');
  }
  let loaded;
  try {
    // The temporal.toml profile file only when asked for: a default profile on a laptop must not
    // silently send `switchyard up` (which starts its own dev server) to another cluster.
    const useFile = vars.TEMPORAL_PROFILE !== undefined || vars.TEMPORAL_CONFIG_FILE !== undefined;
    loaded = loadClientConnectConfig({ overrideEnvVars: vars, disableFile: !useFile });
  } catch (e) {
    throw new Error(
      `Temporal connection settings: ${(e as Error).message} (check TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA, TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE)`,
    );
  }
  const o = loaded.connectionOptions;
  const apiKey = typeof o.apiKey === 'string' ? o.apiKey : undefined;
  if (apiKey && o.tls === false) {
    // Allowed (a local proxy that terminates TLS elsewhere), but never silently: the key goes in clear.
    process.emitWarning(
      'TEMPORAL_API_KEY is set with TEMPORAL_TLS=false: the key is sent unencrypted to the server; turn TLS on (unset TEMPORAL_TLS) unless a trusted local proxy adds it',
      {
        code: 'SWITCHYARD_API_KEY_WITHOUT_TLS',
      },
    );
  }
  return {
    ...(o.address ? { address: o.address } : {}),
    ...(loaded.namespace ? { namespace: loaded.namespace } : {}),
    access: {
      // `false` (TEMPORAL_TLS=false) is kept: it turns TLS off even with an API key.
      ...(o.tls !== undefined && o.tls !== null ? { tls: o.tls } : {}),
      ...(apiKey ? { apiKey } : {}),
      ...(o.metadata && Object.keys(o.metadata).length > 0 ? { metadata: o.metadata as Record<string, string> } : {}),
    },
  };
}

/**
 * Options for a connection: the client Connection (client library, CLI, the worker's own client)
 * and the worker's NativeConnection take the same address, TLS, API key and metadata.
 */
export function connectionOptions(address: string, access: TemporalAccess = {}): ConnectionOptions & NativeConnectionOptions {
  return {
    address,
    ...(access.tls !== undefined ? { tls: access.tls } : {}),
    ...(access.apiKey ? { apiKey: access.apiKey } : {}),
    ...(access.metadata ? { metadata: access.metadata } : {}),
  };
}

/** The data converter every Client and Worker uses: the default one, plus the codec when set. */
export function dataConverterFor(access: TemporalAccess = {}): DataConverter {
  // With encryption on, failure messages and stack traces go through the codec too (encoded
  // attributes); a worker runs the workflow bundle built with the same converter (workers/bundle.ts).
  return access.codec ? { payloadCodecs: [access.codec], failureConverterPath: failureConverterPath() } : {};
}

// The failure converter for runs with payload encryption on: a failure's message and stack trace
// travel in its encoded attributes, a payload that the payload codec encrypts like any other, so
// the server stores "Encoded failure" and never a provider's message that quotes the prompt.
// One failure stays readable: the refusal of a run started in plaintext (type EncryptionRequired)
// goes to a client that has no key, and names only the fix.
// CommonJS on purpose: the SDK loads it with require() by path (DataConverter.failureConverterPath),
// in the worker's main thread and the client, and bundles it into the workflow code.
'use strict';
const { DefaultFailureConverter } = require('@temporalio/common');

const encoded = new DefaultFailureConverter({ encodeCommonAttributes: true });
const plain = new DefaultFailureConverter();

/** Errors whose message is written for a client without the key (see workflows/messages.ts). */
function forKeylessClient(err) {
  return typeof err === 'object' && err !== null && err.type === 'EncryptionRequired' && err.cause == null;
}

exports.failureConverter = {
  errorToFailure(err, payloadConverter, context) {
    return (forKeylessClient(err) ? plain : encoded).errorToFailure(err, payloadConverter, context);
  },
  // Reads both (encoded attributes when present, else the message as stored).
  failureToError(failure, payloadConverter, context) {
    return encoded.failureToError(failure, payloadConverter, context);
  },
};

"""A pipeline written against OpenAI's Batch API, run unchanged against Switchyard.

    pip install openai
    OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=sk-sy-... python openai_batch.py requests.jsonl

Nothing here knows about Switchyard: it uploads the input file (purpose=batch), creates a batch
on /v1/chat/completions with a 24h window, polls it until it ends, downloads the output and error
files and reads every line with the SDK's own types. Switchyard routes each line to the cheapest
adequate model; each output body carries a `switchyard` object with its tier and cost. Prints
one JSON object with what came back.
"""

import argparse
import json
import time

import openai
from openai import OpenAI
from openai.types import Batch
from openai.types.chat import ChatCompletion


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input", help="a JSONL file of {custom_id, method, url, body} lines")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the batch")
    args = parser.parse_args()

    client = OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY, as for OpenAI itself
    with open(args.input, "rb") as f:
        uploaded = client.files.create(file=f, purpose="batch")
    batch: Batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"pipeline": "nightly-example"},
    )
    seen = [batch.status]
    deadline = time.time() + args.timeout
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        if time.time() > deadline:
            raise SystemExit(f"batch {batch.id} still {batch.status} after {args.timeout} s")
        time.sleep(0.5)
        batch = client.batches.retrieve(batch.id)
        if batch.status != seen[-1]:
            seen.append(batch.status)

    answers = []
    if batch.output_file_id:
        for line in client.files.content(batch.output_file_id).text.splitlines():
            row = json.loads(line)
            completion = ChatCompletion.model_validate(row["response"]["body"])
            message = completion.choices[0].message
            answers.append(
                {
                    "custom_id": row["custom_id"],
                    "model": completion.model,
                    "content": message.content,
                    "tool_calls": [c.function.name for c in (message.tool_calls or [])],
                    "finish_reason": completion.choices[0].finish_reason,
                    "completion_tokens": completion.usage.completion_tokens if completion.usage else None,
                    "switchyard": row["response"]["body"].get("switchyard"),
                }
            )
    errors = []
    if batch.error_file_id:
        for line in client.files.content(batch.error_file_id).text.splitlines():
            row = json.loads(line)
            errors.append({"custom_id": row["custom_id"], "error": row.get("error"), "status": (row.get("response") or {}).get("status_code")})

    listed = [b.id for b in client.batches.list(limit=10)]
    # Housekeeping a pipeline does: a finished batch cannot be cancelled (409), and its input can go.
    try:
        client.batches.cancel(batch.id)
        cancel_after_end = 200
    except openai.ConflictError as e:
        cancel_after_end = e.status_code
    deleted = client.files.delete(uploaded.id).deleted
    print(
        json.dumps(
            {
                "file": {"id": uploaded.id, "bytes": uploaded.bytes, "purpose": uploaded.purpose},
                "batch": {
                    "id": batch.id,
                    "status": batch.status,
                    "statuses": seen,
                    "request_counts": batch.request_counts.model_dump() if batch.request_counts else None,
                    "metadata": batch.metadata,
                    "listed": batch.id in listed,
                },
                "cancel_after_end": cancel_after_end,
                "input_deleted": deleted,
                "answers": answers,
                "errors": errors,
            }
        )
    )


if __name__ == "__main__":
    main()

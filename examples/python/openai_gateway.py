"""Use Switchyard from Python's official `openai` package: only the base URL and the key change.

    pip install openai
    python openai_gateway.py --base-url http://127.0.0.1:8080/v1 --api-key sk-sy-...

A routed chat, the same chat again with the same Idempotency-Key (one run, charged once), and a
stream with usage. Prints one JSON object with what came back.
"""

import argparse
import json
import uuid

from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="the gateway's OpenAI base URL (ending in /v1)")
    parser.add_argument("--api-key", required=True, help="a key from `switchyard keys create`")
    parser.add_argument("--prompt", default="Summarise in one sentence: durable workflows survive crashes.")
    args = parser.parse_args()

    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)
    messages = [{"role": "user", "content": args.prompt}]

    # A chat, routed to the cheapest adequate model; Switchyard's headers name the run and its cost.
    key = f"py-{uuid.uuid4()}"
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, extra_headers={"Idempotency-Key": key})
    chat = raw.parse()
    again = client.chat.completions.with_raw_response.create(model="auto", messages=messages, extra_headers={"Idempotency-Key": key})

    # A stream: pieces as the provider sends them, and the usage in the last chunk.
    text, pieces, usage, model = "", 0, None, None
    stream = client.chat.completions.create(model="auto", messages=messages, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        model = chunk.model
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
            pieces += 1
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()

    print(
        json.dumps(
            {
                "chat": {
                    "model": chat.model,
                    "content": chat.choices[0].message.content,
                    "usage": chat.usage.model_dump() if chat.usage else None,
                    "workflowId": raw.headers.get("x-switchyard-workflow-id"),
                    "costNanos": int(raw.headers.get("x-switchyard-cost-nanos", "0")),
                },
                "retry": {"workflowId": again.headers.get("x-switchyard-workflow-id"), "content": again.parse().choices[0].message.content},
                "stream": {"model": model, "text": text, "pieces": pieces, "usage": usage},
            }
        )
    )


if __name__ == "__main__":
    main()

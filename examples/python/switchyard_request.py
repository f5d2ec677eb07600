"""Start a Switchyard request from Python with Temporal's own SDK (`pip install temporalio`).

A Switchyard request is a workflow started by name: type `llmRequest`, the workers' task queue,
workflow id `llm-<requestId>` (so re-submitting the same id never runs it twice), one JSON
argument shaped by contracts/request-input.v1.schema.json. This script sets the memo and search
attribute the Switchyard CLI sets, waits for the result and prints one JSON object: the result,
or {"error": {"type", "message", "details"}} for a failed request (exit status 3).

    python switchyard_request.py --address 127.0.0.1:7233 --request-id t-1 --prompt "Classify: I love it."
"""

import argparse
import asyncio
import json
import os
import sys

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

LLM_CATEGORY = SearchAttributeKey.for_keyword("LlmCategory")


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="127.0.0.1:7233")
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", default="switchyard")
    p.add_argument("--request-id", required=True)
    p.add_argument("--prompt", required=True)
    p.add_argument("--category", default="standard")
    p.add_argument("--extra", default="{}", help="more request fields as JSON, e.g. '{\"maxOutputTokens\": 200}'")
    a = p.parse_args()

    request = {"requestId": a.request_id, "prompt": a.prompt, "category": a.category, **json.loads(a.extra)}
    client = await Client.connect(a.address, namespace=a.namespace)
    workflow_id = f"llm-{a.request_id}"
    try:
        handle = await client.start_workflow(
            "llmRequest",
            request,
            id=workflow_id,
            task_queue=a.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            memo={"title": a.prompt[:80], "category": a.category},
            search_attributes=TypedSearchAttributes([SearchAttributePair(LLM_CATEGORY, a.category)]),
        )
    except WorkflowAlreadyStartedError:
        handle = client.get_workflow_handle(workflow_id)  # the same request id ran before: collect it
    try:
        result = await handle.result()
    except WorkflowFailureError as e:
        cause = e.cause
        if isinstance(cause, ApplicationError):
            details = cause.details[0] if cause.details else None
            print(json.dumps({"workflowId": workflow_id, "error": {"type": cause.type, "message": cause.message, "details": details}}))
            return 3
        raise
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    # Leave without interpreter teardown: the SDK's native runtime can be killed by a signal while
    # it shuts down (seen here about one run in five with temporalio 1.35), after the work is done.
    os._exit(code)

"""The Python sample of Microsoft's article "Interact with Apache Kafka clusters in Azure
HDInsight using a REST proxy", as a checked script.

It makes the sample's calls in the sample's order and with the sample's bodies:

1. a token from MSAL's ConfidentialClientApplication (client credentials, scope
   https://hib.azurehdinsight.net/.default);
2. PUT /v1/topics/hello_topic_<7 random letters> with the sample's TopicCreationRecord;
3. GET /v1/metadata/topics after a pause, again and again, until the new topic is listed;
4. POST /v1/producer/topics/{topic} with the sample's six records (a string with a key, an
   integer sent to partition 0, a float, an object, a list of objects, a nested object);
5. GET /v1/consumer/topics/{topic}/partitions/{p}/offsets/{offset}?count=2 from offset 0,
   moving to the NextOffset header, until an answer holds no record or NextOffset equals the
   offset asked for (the header is kept as the string it is, as the sample does);
6. GET /v1/metadata/topics/{topic}/partitions and .../partitions/0.

Differences from the article, none of which changes a request the proxy sees:
- configuration comes from the environment instead of constants: HDI_KAFKAREST_ENDPOINT,
  HDI_TENANT, HDI_CLIENT_ID, HDI_CLIENT_SECRET, HDI_AUTHORITY_HOST (the sample's
  https://login.microsoftonline.com). The caller points REQUESTS_CA_BUNDLE and SSL_CERT_FILE at
  the CA that signed the endpoint's certificate;
- MSAL gets instance_discovery=False, needed for an authority host Microsoft does not know;
- GET /v1/status is called first, so an unreachable or unauthorised endpoint fails early;
- the pause between listings is HDI_SAMPLE_POLL_SECONDS (the sample's 30 s by default) and the
  wait gives up after HDI_SAMPLE_WAIT_SECONDS (default 600; the sample waits forever);
- the article's last two calls use `partitions_api_format` and `partition_api_format`, which it
  never defines; they are defined here as the API reference's paths;
- HDI_SAMPLE_PARTITION_COUNT replaces the sample's partition_count of 1 when set; every
  partition is then read the way the sample reads partition 0;
- the access token is not printed;
- every answer is checked, and the first unexpected one ends the script with a message on
  stderr and exit status 1. On success the script prints one JSON line on stdout describing
  what it saw; progress goes to stderr.
"""

import json
import os
import random
import string
import sys
import time

import msal
import requests

API_VERSION = "v1"
REQUEST_TIMEOUT = 10
SCOPE = "https://hib.azurehdinsight.net/.default"

# The article's TopicCreationRecord.
TOPIC_CONFIG = {
    "partition_count": 1,
    "replication_factor": 1,
    "topic_properties": {"retention.ms": 604800000, "min.insync.replicas": "1"},
}

# The article's six producer records, in its order.
PAYLOAD = {
    "records": [
        {"key": "key1", "value": "**********"},
        {"partition": 0, "value": 5},
        {"value": 3.14},
        {"value": {"id": 1, "name": "HDInsight Kafka REST proxy"}},
        {
            "value": [
                {"id": 1, "name": "HDInsight Kafka REST proxy 1"},
                {"id": 2, "name": "HDInsight Kafka REST proxy 2"},
                {"id": 3, "name": "HDInsight Kafka REST proxy 3"},
            ]
        },
        {
            "value": {
                "group id": 1,
                "HDI Kafka REST": {"id": 1, "name": "HDInsight Kafka REST proxy 1"},
                "HDI Kafka REST server info": {
                    "id": 1,
                    "name": "HDInsight Kafka REST proxy 1",
                    "servers": [
                        {"server id": 1, "server name": "HDInsight Kafka REST proxy server 1"},
                        {"server id": 2, "server name": "HDInsight Kafka REST proxy server 2"},
                        {"server id": 3, "server name": "HDInsight Kafka REST proxy server 3"},
                    ],
                },
            }
        },
    ]
}

CONSUME_COUNT = 2


def fail(message):
    print(f"rest_sample.py: {message}", file=sys.stderr)
    sys.exit(1)


def log(message):
    print(message, file=sys.stderr)


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None or value == "":
        fail(f"the environment variable {name} is not set")
    return value


def shorten(text, limit=300):
    return text if len(text) <= limit else text[:limit] + "..."


def expect_ok(response, what):
    if not response.ok:
        fail(f"{what}: HTTP {response.status_code}: {shorten(response.text)}")


def json_body(response, what):
    try:
        return response.json()
    except ValueError:
        fail(f"{what}: the body is not JSON: {shorten(response.text)}")


def random_suffix():
    return "".join(random.choice(string.ascii_letters) for _ in range(7))


def same_value(consumed, produced):
    """The proxy hands values back as strings; a value that was not a string is its JSON text."""
    if isinstance(produced, str):
        return consumed == produced
    if not isinstance(consumed, str):
        return False
    try:
        return json.loads(consumed) == produced
    except ValueError:
        return False


def check_broker(broker, what):
    if not isinstance(broker, dict):
        fail(f"{what} is not a BrokerEndpoint: {broker!r}")
    for field, kind in (("hostName", str), ("port", int), ("id", int)):
        if not isinstance(broker.get(field), kind):
            fail(f"{what} has no {kind.__name__} '{field}': {broker!r}")


def check_partition(partition, what):
    if not isinstance(partition, dict):
        fail(f"{what} is not a PartitionMetadata object: {partition!r}")
    for field in ("partition_id", "earliest_offset", "latest_offset"):
        if not isinstance(partition.get(field), int):
            fail(f"{what} has no integer '{field}': {partition!r}")
    check_broker(partition.get("leader"), f"{what}'s leader")
    for field in ("replicas", "isr"):
        brokers = partition.get(field)
        if not isinstance(brokers, list):
            fail(f"{what} has no list '{field}': {partition!r}")
        for i, broker in enumerate(brokers):
            check_broker(broker, f"{what}'s {field}[{i}]")


def main():
    endpoint = env("HDI_KAFKAREST_ENDPOINT").rstrip("/")
    tenant_id = env("HDI_TENANT")
    client_id = env("HDI_CLIENT_ID")
    client_secret = env("HDI_CLIENT_SECRET")
    authority_host = env("HDI_AUTHORITY_HOST", "https://login.microsoftonline.com").rstrip("/")
    poll_seconds = float(env("HDI_SAMPLE_POLL_SECONDS", "30"))
    wait_seconds = float(env("HDI_SAMPLE_WAIT_SECONDS", "600"))
    topic_config = dict(TOPIC_CONFIG)
    topic_config["partition_count"] = int(
        env("HDI_SAMPLE_PARTITION_COUNT", str(TOPIC_CONFIG["partition_count"]))
    )

    app = msal.ConfidentialClientApplication(
        client_id,
        client_secret,
        authority_host + "/" + tenant_id,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[SCOPE])
    if "access_token" not in result:
        fail(
            f"no token: {result.get('error')} {result.get('error_codes')}: "
            f"{shorten(str(result.get('error_description', '')))}"
        )
    access_token = result["access_token"]
    verify_https = True

    def url(rest_api):
        return f"{endpoint}/{API_VERSION}/{rest_api}"

    auth_only = {"Authorization": "Bearer " + access_token}
    headers = {"Authorization": "Bearer " + access_token, "Content-type": "application/json"}

    def get(rest_api, with_content_type=False):
        return requests.get(
            url(rest_api),
            headers=headers if with_content_type else auth_only,
            timeout=REQUEST_TIMEOUT,
            verify=verify_https,
        )

    response = get("status")
    expect_ok(response, "GET /v1/status")
    status_body = json_body(response, "GET /v1/status")

    new_topic = "hello_topic_" + random_suffix()
    log(f"Topic {new_topic} is going to be used for demo.")

    created_at = time.monotonic()
    response = requests.put(
        url(f"topics/{new_topic}"),
        headers=headers,
        json=topic_config,
        timeout=REQUEST_TIMEOUT,
        verify=verify_https,
    )
    expect_ok(response, f"PUT /v1/topics/{new_topic}")
    create_body = json_body(response, f"PUT /v1/topics/{new_topic}")
    log(f"create: {create_body!r}")

    polls = []
    topics = []
    while new_topic not in topics:
        if time.monotonic() - created_at > wait_seconds:
            fail(f"{new_topic} was not listed within {wait_seconds} s of its creation")
        log(f"The new topic {new_topic} is not visible yet. Sleeping {poll_seconds} s...")
        time.sleep(poll_seconds)
        response = get("metadata/topics")
        expect_ok(response, "GET /v1/metadata/topics")
        topic_list = json_body(response, "GET /v1/metadata/topics")
        if not isinstance(topic_list, dict) or not isinstance(topic_list.get("topics"), list):
            fail(f"GET /v1/metadata/topics: not {{\"topics\": [...]}}: {shorten(response.text)}")
        topics = topic_list["topics"]
        polls.append(
            {
                "elapsed_ms": round((time.monotonic() - created_at) * 1000),
                "listed": new_topic in topics,
            }
        )

    response = requests.post(
        url(f"producer/topics/{new_topic}"),
        headers=headers,
        json=PAYLOAD,
        timeout=REQUEST_TIMEOUT,
        verify=verify_https,
    )
    expect_ok(response, f"POST /v1/producer/topics/{new_topic}")
    produce_body = json_body(response, f"POST /v1/producer/topics/{new_topic}")
    log(f"produce: {produce_body!r}")

    consume_calls = []
    consumed = []
    for partition_id in range(topic_config["partition_count"]):
        offset = 0
        while True:
            rest_api = (
                f"consumer/topics/{new_topic}/partitions/{partition_id}"
                f"/offsets/{offset}?count={CONSUME_COUNT}"
            )
            what = f"GET /v1/{rest_api}"
            log(f"Consuming {CONSUME_COUNT} messages from offset {offset}")
            response = get(rest_api, with_content_type=True)
            expect_ok(response, what)
            messages = json_body(response, what)
            if not isinstance(messages, dict) or not isinstance(messages.get("records"), list):
                fail(f"{what}: not {{\"records\": [...]}}: {shorten(response.text)}")
            records = messages["records"]
            next_offset = response.headers.get("NextOffset")
            if next_offset is None:
                fail(f"{what}: no NextOffset header")
            try:
                next_value = int(next_offset)
            except ValueError:
                fail(f"{what}: NextOffset {next_offset!r} is not an integer")
            if len(records) > CONSUME_COUNT:
                fail(f"{what}: {len(records)} records for count={CONSUME_COUNT}")
            for record in records:
                if record.get("partition") != partition_id:
                    fail(f"{what}: a record of another partition: {record!r}")
                if not isinstance(record.get("offset"), int):
                    fail(f"{what}: a record without an integer offset: {record!r}")
            offsets = [record["offset"] for record in records]
            if offsets and offsets[0] != int(offset):
                fail(f"{what}: the first record has offset {offsets[0]}")
            if offsets != list(range(int(offset), int(offset) + len(offsets))):
                fail(f"{what}: offsets {offsets} are not consecutive")
            expected_next = offsets[-1] + 1 if offsets else int(offset)
            if next_value != expected_next:
                fail(f"{what}: NextOffset {next_offset} after offsets {offsets}")
            consume_calls.append(
                {
                    "partition": partition_id,
                    "offset": int(offset),
                    "status": response.status_code,
                    "next_offset": next_offset,
                    "offsets": offsets,
                }
            )
            consumed.extend(records)
            # The sample's stop condition, with the header still a string.
            if offset == next_offset or not records:
                log("Consumer caught up with producer.")
                break
            offset = next_offset

    produced = PAYLOAD["records"]
    if len(consumed) != len(produced):
        fail(f"{len(produced)} records produced, {len(consumed)} consumed back")
    ordered = sorted(consumed, key=lambda r: (r["partition"], r["offset"]))
    # Each partition holds its records in the order they were produced: walk the produced
    # records and take each from the head of the partition that holds it next.
    heads = {}
    for record in ordered:
        heads.setdefault(record["partition"], []).append(record)
    placed = []
    for i, sent in enumerate(produced):
        for partition_id, queue in sorted(heads.items()):
            if not queue:
                continue
            record = queue[0]
            if same_value(record.get("value"), sent["value"]) and record.get("key") == sent.get(
                "key"
            ):
                if sent.get("partition") not in (None, partition_id):
                    fail(f"record {i} was sent to partition {sent['partition']}, read from {partition_id}")
                queue.pop(0)
                placed.append({"partition": partition_id, "offset": record["offset"]})
                break
        else:
            fail(f"record {i} ({sent!r}) was not read back in its partition's order: {ordered!r}")

    what = f"GET /v1/metadata/topics/{new_topic}/partitions"
    response = get(f"metadata/topics/{new_topic}/partitions")
    expect_ok(response, what)
    partition_list = json_body(response, what)
    if not isinstance(partition_list, dict) or partition_list.get("topic") != new_topic:
        fail(f"{what}: not about {new_topic}: {shorten(response.text)}")
    partitions = partition_list.get("partitions")
    if not isinstance(partitions, list) or len(partitions) != topic_config["partition_count"]:
        fail(f"{what}: expected {topic_config['partition_count']} partitions: {shorten(response.text)}")
    for i, partition in enumerate(partitions):
        check_partition(partition, f"{what}: partitions[{i}]")

    partition_id = 0
    what = f"GET /v1/metadata/topics/{new_topic}/partitions/{partition_id}"
    response = get(f"metadata/topics/{new_topic}/partitions/{partition_id}")
    expect_ok(response, what)
    partition = json_body(response, what)
    check_partition(partition, what)
    if partition["partition_id"] != partition_id:
        fail(f"{what}: answered about partition {partition['partition_id']}")

    print(
        json.dumps(
            {
                "status": status_body,
                "topic": new_topic,
                "create": create_body,
                "polls": polls,
                "produce": produce_body,
                "produced": produced,
                "consume_calls": consume_calls,
                "consumed": ordered,
                "placed": placed,
                "partitions": partition_list,
                "partition": partition,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

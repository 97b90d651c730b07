#!/usr/bin/env bash
# Deploy the broker to AWS with SAM, without prompts: the zip scripts/build.sh makes (arm64, without
# the simulator), deployed as it is by `sam deploy` of template.yaml (whose CodeUri is that zip;
# there is no `sam build`). Prints the broker URL at the end.
#
#   export AWS_REGION=ap-northeast-1                       # plus AWS credentials, any usual way
#   SAKURACLOUD_ACCESS_TOKEN=... SAKURACLOUD_ACCESS_TOKEN_SECRET=... scripts/deploy.sh
#
# The broker's secrets never become CloudFormation parameters: with OSB_SECRET_ARN set, that
# secret is used as it is; otherwise the secret `<stack>/broker` is created (or updated) here from
# SAKURACLOUD_ACCESS_TOKEN / SAKURACLOUD_ACCESS_TOKEN_SECRET, keeping the broker password and the
# encryption keys it already holds, or generating them the first time (OSB_USERNAME,
# OSB_PASSWORD, OSB_ENCRYPTION_KEYS from the environment win when set).
#
# Environment: STACK_NAME (osb-sacloud), AWS_REGION or AWS_DEFAULT_REGION (required),
# OSB_SECRET_ARN, SAKURACLOUD_ZONE (is1a), OSB_BINDING_MODE (shared), LOG_LEVEL (info),
# MEMORY_SIZE (256), RESERVED_CONCURRENCY (10; 0 for none), SUBNET_IDS and SECURITY_GROUP_IDS
# (comma-separated; dedicated bindings), LAMBDA_ZIP (a zip scripts/build.sh made, e.g. CI's tested
# artifact: deployed instead of building one here), SAM_CLI_VERSION (the pinned SAM CLI),
# OSB_NETWORKS (the network pools as one line of JSON, e.g. `jq -c . networks.json`; or keep them
# in the secret under OSB_NETWORKS), OSB_ADOPT_LEGACY (0; 1 adopts the 2018 broker's appliances).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "deploy: $*" >&2; exit 1; }

stack="${STACK_NAME:-osb-sacloud}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
[ -n "$region" ] || die "set AWS_REGION (e.g. ap-northeast-1) to the region to deploy to"
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region" SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"

# Fail fast, before installing or building anything, when there are no usable AWS credentials.
if command -v aws >/dev/null 2>&1; then
    identity="$(aws sts get-caller-identity --query Arn --output text 2>&1)" \
        || die "no usable AWS credentials (${identity##*$'\n'}); configure them (aws configure, AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or OIDC in CI) and retry"
else
    identity="(aws CLI not installed; credentials from the environment)"
    if [ -z "${AWS_ACCESS_KEY_ID:-}${AWS_PROFILE:-}${AWS_WEB_IDENTITY_TOKEN_FILE:-}${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ] \
        && ! [ -s "${AWS_SHARED_CREDENTIALS_FILE:-$HOME/.aws/credentials}" ] && ! [ -s "${AWS_CONFIG_FILE:-$HOME/.aws/config}" ]; then
        die "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (or use OIDC in CI) and retry"
    fi
fi

# The pinned SAM CLI (and boto3, which it brings) from PyPI in ./.venv-sam.
# shellcheck source=scripts/sam-env.sh
source scripts/sam-env.sh || die "no SAM CLI"
python=("${sam_python[@]}")
"${python[@]}" -c 'import boto3' 2>/dev/null || die "the python next to sam lacks boto3 (remove $(dirname "$(dirname "${sam[0]}")") and retry)"
echo "deploying stack $stack to $region as $identity" >&2

secret_arn="${OSB_SECRET_ARN:-}"
if [ -z "$secret_arn" ]; then
    [ -n "${SAKURACLOUD_ACCESS_TOKEN:-}" ] && [ -n "${SAKURACLOUD_ACCESS_TOKEN_SECRET:-}" ] \
        || die "set OSB_SECRET_ARN to an existing secret, or SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET to have the secret $stack/broker written"
    # The values go through the environment of this one process, never through argv.
    secret_arn="$(SECRET_NAME="$stack/broker" "${python[@]}" - <<'PY'
import base64, json, os, secrets, boto3
client = boto3.client("secretsmanager")
name = os.environ["SECRET_NAME"]
try:
    current = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    exists = True
except client.exceptions.ResourceNotFoundException:
    current, exists = {}, False
def pick(key, generate):
    return os.environ.get(key) or current.get(key) or generate()
value = {
    "OSB_USERNAME": pick("OSB_USERNAME", lambda: "broker"),
    "OSB_PASSWORD": pick("OSB_PASSWORD", lambda: secrets.token_urlsafe(24)),
    "SAKURACLOUD_ACCESS_TOKEN": os.environ["SAKURACLOUD_ACCESS_TOKEN"],
    "SAKURACLOUD_ACCESS_TOKEN_SECRET": os.environ["SAKURACLOUD_ACCESS_TOKEN_SECRET"],
    "OSB_ENCRYPTION_KEYS": pick("OSB_ENCRYPTION_KEYS", lambda: base64.b64encode(secrets.token_bytes(32)).decode()),
}
text = json.dumps(value)
if exists:
    arn = client.put_secret_value(SecretId=name, SecretString=text)["ARN"]
else:
    arn = client.create_secret(Name=name, Description="osb-sacloud broker credentials", SecretString=text)["ARN"]
print(arn)
PY
)" || die "could not write the secret $stack/broker"
    echo "broker secret: $secret_arn" >&2
fi

# The artifact: template.yaml's CodeUri, the zip scripts/build.sh makes. LAMBDA_ZIP deploys one
# built (and tested) elsewhere as it is; otherwise it is built here.
code_uri=target/lambda/osb-sacloud/bootstrap.zip
if [ -n "${LAMBDA_ZIP:-}" ]; then
    [ -f "$LAMBDA_ZIP" ] || die "LAMBDA_ZIP=$LAMBDA_ZIP: no such file"
    zip="$LAMBDA_ZIP"
else
    LAMBDA_DIR="${LAMBDA_DIR:-${CARGO_TARGET_DIR:-target}/lambda}" scripts/build.sh || die "scripts/build.sh failed"
    zip="${LAMBDA_DIR:-${CARGO_TARGET_DIR:-target}/lambda}/osb-sacloud/bootstrap.zip"
fi
if ! [ "$zip" -ef "$code_uri" ]; then
    mkdir -p "$(dirname "$code_uri")"
    cp "$zip" "$code_uri"
fi
unzip -l "$code_uri" | grep -q ' bootstrap$' || die "$zip holds no bootstrap"
echo "deploying $code_uri (sha256 $(sha256sum "$code_uri" | cut -d' ' -f1))" >&2

overrides=(
    "SecretArn=$secret_arn"
    "Zone=${SAKURACLOUD_ZONE:-is1a}"
    "BindingMode=${OSB_BINDING_MODE:-shared}"
    "LogLevel=${LOG_LEVEL:-info}"
    "MemorySize=${MEMORY_SIZE:-256}"
    "ReservedConcurrency=${RESERVED_CONCURRENCY:-10}"
    "AdoptLegacy=${OSB_ADOPT_LEGACY:-0}"
)
[ -z "${OSB_NETWORKS:-}" ] || overrides+=("Networks=$OSB_NETWORKS")
# Empty lists stay at the template's default (no VPC).
[ -z "${SUBNET_IDS:-}" ] || overrides+=("SubnetIds=$SUBNET_IDS")
[ -z "${SECURITY_GROUP_IDS:-}" ] || overrides+=("SecurityGroupIds=$SECURITY_GROUP_IDS")

"${sam[@]}" deploy \
    --template-file template.yaml \
    --stack-name "$stack" \
    --region "$region" \
    --resolve-s3 \
    --capabilities CAPABILITY_IAM \
    --no-confirm-changeset \
    --no-fail-on-empty-changeset \
    --parameter-overrides "${overrides[@]}"

url="$(STACK="$stack" "${python[@]}" -c '
import os, boto3
outputs = boto3.client("cloudformation").describe_stacks(StackName=os.environ["STACK"])["Stacks"][0]["Outputs"]
print({o["OutputKey"]: o["OutputValue"] for o in outputs}["BrokerUrl"])')"
echo "broker URL: $url"
echo "credentials: OSB_USERNAME / OSB_PASSWORD in $secret_arn"
echo "  (aws secretsmanager get-secret-value --secret-id '$secret_arn' --query SecretString --output text)"
echo "check it:    OSB_USERNAME=... OSB_PASSWORD=... SMOKE_CATALOG_ONLY=1 scripts/smoke.sh '$url'"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    { echo "broker_url=$url"; echo "secret_arn=$secret_arn"; } >>"$GITHUB_OUTPUT"
fi

#!/usr/bin/env bash
# `make run`: the orders example end to end on the embedded SQLite default.
# 1. start a large order: it runs validate and price, then waits for a person's approval;
# 2. answer the approval with `graphrun runs resume`, executing the rest here;
# 3. start a return (a declarative YAML workflow): it waits for the warehouse's signal;
# 4. send the signal with `graphrun runs signal`, executing the rest here;
# 5. list the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
graphrun=.venv/bin/graphrun
export GRAPHRUN_DATABASE_URL="${GRAPHRUN_DATABASE_URL:-sqlite:///./graphrun.db}"
app=examples/orders
order="A$(date +%s)"

echo "== graphrun run orders.fulfil (order $order, total 160.00: needs approval)"
$graphrun run orders.fulfil --app "$app" --idempotency-key "$order" \
  --input "{\"order_id\": \"$order\", \"items\": [{\"sku\": \"tea\", \"qty\": 2, \"price\": 80}]}"
run_id=$($graphrun runs list --status waiting --workflow orders.fulfil --limit 1 --json |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["id"])')

echo
echo "== an invalid answer is refused and the run keeps waiting"
$graphrun runs resume "$run_id" --value '{"approved": "maybe"}' || true

echo
echo "== graphrun runs resume $run_id --value '{\"approved\": true}'"
$graphrun runs resume "$run_id" --value '{"approved": true, "note": "looks fine"}' --app "$app"

echo
echo "== graphrun run orders.returns (workflows/returns.yaml): waits for the parcel"
$graphrun run orders.returns --app "$app" --idempotency-key "R$order" \
  --input "{\"order_id\": \"$order\", \"amount\": 160, \"reason\": \"damaged\"}"
return_id=$($graphrun runs list --status waiting --workflow orders.returns --limit 1 --json |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["id"])')

echo
echo "== graphrun runs signal $return_id parcel_received '{\"condition\": \"intact\"}'"
$graphrun runs signal "$return_id" parcel_received '{"condition": "intact"}' --app "$app"

echo
echo "== graphrun runs list"
$graphrun runs list --limit 5

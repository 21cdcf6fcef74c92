#!/bin/sh
# routed-sql.sh prints, for every case of the golden plan fixtures (router/planner/testdata/plan_*.json),
# what each shard is sent (shard name and SQL, in plan order), the merge steps, the error and
# the sticky/dynamic flags, one stable line each, so that two versions of the fixtures can be
# compared whatever their layout:
#
#   scripts/routed-sql.sh > before.txt; ...; scripts/routed-sql.sh > after.txt; diff before.txt after.txt
#
# It reads both the flat layout (shard/sql, scatter, branches) and the primitives' description
# (plan.steps, plan.flags), and the executions of prepared statements (plan_prepared.json: what
# each set of values sends, and how it was placed). A multi-shard write's commit step and the flags the flat layout did
# not have (diagnostic, bound, copies) are left out.
set -eu
cd "$(dirname "$0")/../router/planner/testdata"
for f in plan_*.json; do
	jq -r --arg file "$f" '
	  def params: if (.params // []) | length > 0 then " [params " + ((.params | map(tostring)) | join(" ")) + "]" else "" end;
	  .[] |
	  "== \($file) | \(.comment)",
	  (if .error then "  error: \(.error)" else empty end),
	  (if .plan then
	     (.plan.steps[] | select(.step != "commit") |
	        if .detail and (.sql | not) then "  \(.step): \(.detail)"
	        else "  \(.step) \(.shard): \(.sql)\(params)" end)
	   elif .branches then (.branches[] | "  write \(.)")
	   elif .scatter then (.scatter[] |
	        if startswith("merge: ") then "  \(.)" else "  route " + (.[6:]) end)
	   elif .shard then "  route \(.shard): \(.sql)"
	   else empty end),
	  (.explain // [] | .[] | "  explain \(.)"),
	  (.executions // [] | .[] | "  execute \(.params | map(tostring) | join(",")) via \(.via): " + (.routed | join(" | "))),
	  ([if (.sticky // false) or ((.plan.flags // []) | index("sticky") != null) then "sticky" else empty end,
	    if (.dynamic // false) or ((.plan.flags // []) | index("dynamic") != null) then "dynamic" else empty end,
	    if .bound then "bound" else empty end] | if length > 0 then "  flags: " + join(",") else empty end)
	' "$f"
done

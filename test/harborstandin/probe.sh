#!/bin/bash
# probe.sh BASE_URL: sends the raw Harbor API calls the stand-in implements and
# prints, for each, the status, the headers that matter and the body with
# volatile values (ids, times, secrets, request ids) replaced, so that the
# output for a real Harbor and for the stand-in can be compared with diff.
# Used by hand for docs/harbor-standin.md; not run by the tests.
#
#   P=probe test/harborstandin/probe.sh http://127.0.0.1:58090 > standin.txt
#   P=probe test/harborstandin/probe.sh http://127.0.0.1:58080 > real.txt
#   diff standin.txt real.txt
#
# Needs curl and jq. P is the project to create (default "probe"); it must not
# exist yet. ADMIN is user:password (default admin:Harbor12345).
set -euo pipefail
BASE=${1:?usage: probe.sh BASE_URL}
BASE=${BASE%/}
P=${P:-probe}
ADMIN=${ADMIN:-admin:Harbor12345}
A=$BASE/api/v2.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# norm: the body as one line of JSON with volatile values replaced.
norm() {
	if [ ! -s "$tmp/body" ]; then
		echo "body: (empty)"
		return
	fi
	if jq -e . "$tmp/body" >/dev/null 2>&1; then
		echo "body: $(jq -cS --arg p "$P" '
			walk(if type == "object" then
				with_entries(
					if (.key | test("(^id$|_id$|^ref$)")) and (.value | type == "number") then .value = "<id>"
					elif (.key | test("_id$")) and (.value | type == "string") and (.value | test("^[0-9]+$")) then .value = "<id>"
					elif (.key | test("time$|_at$|^occur_at$|date_created")) and (.value != -1) then .value = "<time>"
					elif .key == "secret" then .value = "<secret \(.value | length) chars, \(if (.value | test("^[A-Za-z0-9]+$")) then "alnum" else "other" end)>"
					elif .key == "harbor_version" then .value = "<version>"
					else . end)
			elif type == "string" then gsub($p; "<P>") else . end)' "$tmp/body")"
	else
		echo "body: $(head -c 300 "$tmp/body" | tr '\n' ' ')"
	fi
}

# req NAME METHOD PATH [curl args...]: one call, printed.
req() {
	local name=$1 method=$2 url=$3
	shift 3
	local code m=(-X "$method")
	[ "$method" = HEAD ] && m=(--head) # -X HEAD would wait for a body
	code=$(curl -sS -m 30 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "${m[@]}" "$@" "$url")
	echo "== $name: $method ${url#"$BASE"}" | sed -E "s/$P/<P>/g; s#/[0-9]+(/|\$|\?)#/<id>\1#g; s#ProjectID%3D[0-9]+#ProjectID%3D<id>#"
	echo "status: $code"
	grep -iE '^(content-type|location|x-total-count|link|www-authenticate):' "$tmp/headers" |
		tr -d '\r' | sed -E "s/$P/<P>/g; s#/[0-9]+\$#/<id>#; s#127\.0\.0\.1:[0-9]+#<host>#g" | sort -f || true
	grep -qi '^x-request-id:' "$tmp/headers" && echo "x-request-id: present" || echo "x-request-id: absent"
	if grep -i '^x-request-id:' "$tmp/headers" | grep -q 'probe-rid'; then echo "x-request-id: echoed"; fi
	norm
}

json=(-H 'Content-Type: application/json')
adm=(-u "$ADMIN")

# Basics.
req ping GET "$A/ping"
req health GET "$A/health"
req systeminfo-anonymous GET "$A/systeminfo"
req systeminfo-admin GET "$A/systeminfo" "${adm[@]}" -H 'X-Request-Id: probe-rid'
req unknown-path GET "$A/no-such-thing" "${adm[@]}"
req wrong-method PATCH "$A/projects" "${adm[@]}"

# Projects.
req head-missing HEAD "$A/projects?project_name=$P" "${adm[@]}"
req head-anonymous HEAD "$A/projects?project_name=$P"
req create-anonymous POST "$A/projects" "${json[@]}" -d "{\"project_name\":\"$P\",\"metadata\":{\"public\":\"false\"}}"
req create-bad-password POST "$A/projects" -u admin:wrong "${json[@]}" -d "{\"project_name\":\"$P\",\"metadata\":{\"public\":\"false\"}}"
req create-bad-name POST "$A/projects" "${adm[@]}" "${json[@]}" -d '{"project_name":"Bad_Name","metadata":{"public":"false"}}'
req create-broken-json POST "$A/projects" "${adm[@]}" "${json[@]}" -d '{"project_name":'
req create POST "$A/projects" "${adm[@]}" "${json[@]}" -d "{\"project_name\":\"$P\",\"metadata\":{\"public\":\"false\"}}"
pid=$(sed -n 's#^[Ll]ocation: .*/projects/\([0-9]*\).*#\1#p' "$tmp/headers" | tr -d '\r')
req create-again POST "$A/projects" "${adm[@]}" "${json[@]}" -d "{\"project_name\":\"$P\",\"metadata\":{\"public\":\"false\"}}"
req create-name-in-location POST "$A/projects" "${adm[@]}" "${json[@]}" -H 'X-Resource-Name-In-Location: true' -d "{\"project_name\":\"$P-loc\",\"metadata\":{\"public\":\"true\"}}"
req head-present HEAD "$A/projects?project_name=$P" "${adm[@]}"
req get-by-name GET "$A/projects/$P" "${adm[@]}"
req get-by-id GET "$A/projects/$pid" "${adm[@]}"
req get-missing-name GET "$A/projects/$P-missing" "${adm[@]}"
req get-missing-id GET "$A/projects/999999" "${adm[@]}"
req get-anonymous-private GET "$A/projects/$P"
req get-anonymous-public GET "$A/projects/$P-loc"
req list-exact GET "$A/projects?q=name%3D$P" "${adm[@]}"
req list-fuzzy GET "$A/projects?name=$P&page_size=1" "${adm[@]}"
req list-page-2 GET "$A/projects?name=$P&page=2&page_size=1" "${adm[@]}"
req list-page-size-101 GET "$A/projects?page_size=101" "${adm[@]}"
req list-anonymous GET "$A/projects?name=$P"

# Robots.
perm() { echo "[{\"kind\":\"project\",\"namespace\":\"$1\",\"access\":[{\"resource\":\"repository\",\"action\":\"pull\"},{\"resource\":\"repository\",\"action\":\"push\"},{\"resource\":\"artifact\",\"action\":\"list\"}]}]"; }
req robot-create POST "$A/robots" "${adm[@]}" "${json[@]}" -d "{\"name\":\"ci\",\"level\":\"project\",\"duration\":-1,\"description\":\"probe\",\"permissions\":$(perm "$P")}"
rid=$(jq -r .id "$tmp/body")
rsecret=$(jq -r .secret "$tmp/body")
req robot-create-again POST "$A/robots" "${adm[@]}" "${json[@]}" -d "{\"name\":\"ci\",\"level\":\"project\",\"duration\":-1,\"permissions\":$(perm "$P")}"
req robot-create-missing-project POST "$A/robots" "${adm[@]}" "${json[@]}" -d "{\"name\":\"ci\",\"level\":\"project\",\"duration\":-1,\"permissions\":$(perm "$P-missing")}"
req robot-create-no-permissions POST "$A/robots" "${adm[@]}" "${json[@]}" -d '{"name":"ci2","level":"project","duration":-1,"permissions":[]}'
req robot-create-bad-name POST "$A/robots" "${adm[@]}" "${json[@]}" -d "{\"name\":\"Bad\$Name\",\"level\":\"project\",\"duration\":-1,\"permissions\":$(perm "$P")}"
req robot-create-default-duration POST "$A/robots" "${adm[@]}" "${json[@]}" -d "{\"name\":\"ci30\",\"level\":\"project\",\"duration\":0,\"permissions\":$(perm "$P")}"
req robot-create-anonymous POST "$A/robots" "${json[@]}" -d "{\"name\":\"ci3\",\"level\":\"project\",\"duration\":-1,\"permissions\":$(perm "$P")}"
req robot-list-system GET "$A/robots" "${adm[@]}"
req robot-list-project GET "$A/robots?q=Level%3Dproject%2CProjectID%3D$pid&page_size=100" "${adm[@]}"
req robot-get GET "$A/robots/$rid" "${adm[@]}"
req robot-get-missing GET "$A/robots/999999" "${adm[@]}"
req robot-update-short-name PUT "$A/robots/$rid" "${adm[@]}" "${json[@]}" -d "{\"name\":\"ci\",\"level\":\"project\",\"duration\":-1,\"permissions\":$(perm "$P")}"
req robot-update PUT "$A/robots/$rid" "${adm[@]}" "${json[@]}" -d "{\"name\":\"robot\$$P+ci\",\"level\":\"project\",\"duration\":-1,\"description\":\"probe2\",\"permissions\":$(perm "$P")}"
req robot-as-login-get-project GET "$A/projects/$P" -u "robot\$$P+ci:$rsecret"
req robot-as-login-create-project POST "$A/projects" -u "robot\$$P+ci:$rsecret" "${json[@]}" -d "{\"project_name\":\"$P-byrobot\",\"metadata\":{\"public\":\"false\"}}"
req robot-as-login-list-robots GET "$A/robots" -u "robot\$$P+ci:$rsecret"
req robot-wrong-secret-get-project GET "$A/projects/$P" -u "robot\$$P+ci:wrong"

# Webhook policies.
hook() { echo "{\"name\":\"$1\",\"description\":\"probe\",\"enabled\":true,\"event_types\":$2,\"targets\":$3}"; }
tgt='[{"type":"http","address":"http://127.0.0.1:9/hook","auth_header":"Bearer s3cret","skip_cert_verify":false}]'
req hook-create POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -H 'X-Is-Resource-Name: true' -d "$(hook tsys-ci '["PUSH_ARTIFACT"]' "$tgt")"
hid=$(sed -n 's#^[Ll]ocation: .*/policies/\([0-9]*\).*#\1#p' "$tmp/headers" | tr -d '\r')
req hook-create-again POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook tsys-ci '["PUSH_ARTIFACT"]' "$tgt")"
req hook-create-unknown-event POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook h2 '["NO_SUCH_EVENT"]' "$tgt")"
req hook-create-no-events POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook h3 '[]' "$tgt")"
req hook-create-no-targets POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook h4 '["PUSH_ARTIFACT"]' '[]')"
req hook-create-bad-address POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook h5 '["PUSH_ARTIFACT"]' '[{"type":"http","address":"ftp://x/y"}]')"
req hook-create-bad-type POST "$A/projects/$P/webhook/policies" "${adm[@]}" "${json[@]}" -d "$(hook h6 '["PUSH_ARTIFACT"]' '[{"type":"email","address":"http://127.0.0.1:9/"}]')"
req hook-create-missing-project POST "$A/projects/$P-missing/webhook/policies" "${adm[@]}" "${json[@]}" -H 'X-Is-Resource-Name: true' -d "$(hook h7 '["PUSH_ARTIFACT"]' "$tgt")"
req hook-list GET "$A/projects/$P/webhook/policies?page_size=100" "${adm[@]}" -H 'X-Is-Resource-Name: true'
req hook-get GET "$A/projects/$P/webhook/policies/$hid" "${adm[@]}"
req hook-get-missing GET "$A/projects/$P/webhook/policies/999999" "${adm[@]}"
req hook-update PUT "$A/projects/$P/webhook/policies/$hid" "${adm[@]}" "${json[@]}" -H 'X-Is-Resource-Name: true' -d "$(hook tsys-ci '["PUSH_ARTIFACT","DELETE_ARTIFACT"]' "$tgt")"
req hook-events GET "$A/projects/$P/webhook/events" "${adm[@]}"
req hook-list-robot GET "$A/projects/$P/webhook/policies" -u "robot\$$P+ci:$rsecret"

# Tag retention.
rule='{"action":"retain","template":"latestPushedK","params":{"latestPushedK":10},"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}'
ret() { echo "{\"algorithm\":\"or\",\"rules\":$1,\"trigger\":{\"kind\":\"Schedule\",\"settings\":{\"cron\":\"$3\"}},\"scope\":{\"level\":\"project\",\"ref\":$2}}"; }
req retention-create POST "$A/retentions" "${adm[@]}" "${json[@]}" -d "$(ret "[$rule]" "$pid" "0 0 3 * * *")"
tid=$(sed -n 's#^[Ll]ocation: .*/retentions/\([0-9]*\).*#\1#p' "$tmp/headers" | tr -d '\r')
req retention-create-again POST "$A/retentions" "${adm[@]}" "${json[@]}" -d "$(ret "[$rule]" "$pid" "0 0 3 * * *")"
req retention-create-duplicate-rules POST "$A/retentions" "${adm[@]}" "${json[@]}" -d "$(ret "[$rule,$rule]" "$pid" "")"
req retention-create-missing-project POST "$A/retentions" "${adm[@]}" "${json[@]}" -d "$(ret "[$rule]" 999999 "")"
req retention-create-robot POST "$A/retentions" -u "robot\$$P+ci:$rsecret" "${json[@]}" -d "$(ret "[$rule]" "$pid" "")"
req retention-project-metadata GET "$A/projects/$P" "${adm[@]}"
req retention-get GET "$A/retentions/$tid" "${adm[@]}"
req retention-get-missing GET "$A/retentions/999999" "${adm[@]}"
req retention-update PUT "$A/retentions/$tid" "${adm[@]}" "${json[@]}" -d "$(ret "[${rule/10/5}]" "$pid" "0 0 4 * * *")"
req retention-update-empty-cron PUT "$A/retentions/$tid" "${adm[@]}" "${json[@]}" -d "$(ret "[${rule/10/5}]" "$pid" "")"

# The registry side.
req v2-anonymous GET "$BASE/v2/"
req v2-admin-basic GET "$BASE/v2/" "${adm[@]}"
req token-bad-password GET "$BASE/service/token?service=harbor-registry&scope=repository:$P/app:pull,push" -u admin:wrong
req token-robot GET "$BASE/service/token?service=harbor-registry&scope=repository:$P/app:pull,push" -u "robot\$$P+ci:$rsecret"
req artifacts-no-repo GET "$A/projects/$P/repositories/app/artifacts" "${adm[@]}"

# Deletes.
req robot-delete DELETE "$A/robots/$rid" "${adm[@]}"
req robot-delete-again DELETE "$A/robots/$rid" "${adm[@]}"
req hook-delete DELETE "$A/projects/$P/webhook/policies/$hid" "${adm[@]}"
req project-delete-loc DELETE "$A/projects/$P-loc" "${adm[@]}" -H 'X-Is-Resource-Name: true'

#!/bin/bash
# Cursor pagination of /sandboxes and /archived-sandboxes, the status filter, and archiving.
. "$(dirname "$0")/lib.sh"
need_cmd jq
hutchd_start --roles api --archive-after-secs 1

ids=()
for i in $(seq 1 25); do
	api POST "/sandboxes?wait=false" "{\"name\":\"p$i\"}"
	ids+=("$(jq_get .sandbox_id <<<"$BODY")")
done
# forward through pages of 10: every sandbox exactly once, newest first
seen=(); cursor=""; pages=0
while :; do
	api GET "/sandboxes?limit=10${cursor:+&cursor=$cursor}"
	pages=$((pages + 1))
	mapfile -t page < <(jq_get '.sandboxes[].id' <<<"$BODY")
	seen+=("${page[@]}")
	next=$(jq_get .next_cursor <<<"$BODY")
	[ "$next" = null ] && break
	prev=$(jq_get .prev_cursor <<<"$BODY")
	cursor=$next
	[ $pages -gt 5 ] && break
done
expect_eq "three pages" "$pages" 3
expect_eq "25 sandboxes seen" "${#seen[@]}" 25
expect_eq "no duplicates" "$(printf '%s\n' "${seen[@]}" | sort -u | wc -l)" 25
expect_eq "newest first" "${seen[0]}" "${ids[24]}"
expect_eq "oldest last" "${seen[24]}" "${ids[0]}"
expect_eq "last page has a prev_cursor" "$([ "$prev" != null ] && echo yes)" yes
api GET "/sandboxes?limit=10&cursor=$(jq_get .prev_cursor <<<"$BODY")&direction=backward"
expect_eq "backward returns the previous page" "$(jq_get '.sandboxes[0].id' <<<"$BODY")" "${seen[10]}"
expect_eq "backward page size" "$(jq_get '.sandboxes|length' <<<"$BODY")" 10
api GET "/sandboxes?limit=0"; expect_eq "limit 0 is 400" "$CODE" 400
api GET "/sandboxes?limit=abc"; expect_eq "limit abc is 400" "$CODE" 400
api GET "/sandboxes?cursor=%%%"; expect_eq "bad cursor is 400" "$CODE" 400
api GET "/sandboxes?cursor=bm90OmFjdXJzb3I"; expect_eq "forged cursor is 400" "$CODE" 400
api GET "/sandboxes?direction=sideways"; expect_eq "bad direction is 400" "$CODE" 400
api GET "/sandboxes?status=sleeping"; expect_eq "unknown status filter is 400" "$CODE" 400
api GET "/sandboxes?status=running"
expect_eq "status filter" "$(jq_get '.sandboxes|length' <<<"$BODY")" 0
api GET "/sandboxes?status=pending&limit=1000"
expect_eq "pending filter" "$(jq_get '.sandboxes|length' <<<"$BODY")" 25

# terminated sandboxes stay listed, then move to /archived-sandboxes
for id in "${ids[@]:0:3}"; do api DELETE "/sandboxes/$id"; done
api GET "/sandboxes?status=terminated"
expect_eq "terminated stay listed at first" "$(jq_get '.sandboxes|length' <<<"$BODY")" 3
for _ in $(seq 1 40); do
	api GET "/archived-sandboxes"; [ "$(jq_get '.sandboxes|length' <<<"$BODY")" = 3 ] && break; sleep 0.25
done
expect_eq "archived after the configured time" "$(jq_get '.sandboxes|length' <<<"$BODY")" 3
expect_eq "archived_at present" "$(jq_get '.sandboxes[0].archived_at|type' <<<"$BODY")" number
api GET "/sandboxes?limit=1000"
expect_eq "archived ones left the listing" "$(jq_get '.sandboxes|length' <<<"$BODY")" 22
api GET "/archived-sandboxes/${ids[0]}"; expect_eq "get archived" "$(jq_get .id <<<"$BODY")" "${ids[0]}"
api GET "/archived-sandboxes/${ids[5]}"; expect_eq "live sandbox is not archived" "$CODE" 404
api DELETE "/sandboxes/${ids[0]}"; expect_eq "delete of an archived sandbox is idempotent" "$CODE" 200
api GET "/archived-sandboxes?limit=2"
expect_eq "archived list pages" "$(jq_get '.next_cursor != null' <<<"$BODY")" true
t_done

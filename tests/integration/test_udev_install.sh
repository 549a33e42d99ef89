#!/bin/bash
# udev/: the udev rule, the polkit rule and the sysusers.d file are well
# formed, do what docs/hardware.md says, and `cmake --install` puts them
# where udev, polkitd and systemd-sysusers look.
. "$TS_SRC/tests/lib/common.sh"
U=$TS_SRC/udev
RULE=$U/70-tokensign.rules
POLKIT=$U/polkit/50-tokensign-pcscd.rules
SYSUSERS=$U/sysusers/tokensign.conf

# --- install layout --------------------------------------------------------
inst=$TS_TMP/inst
cmake --install "$TS_BIN" --prefix "$inst" >"$TS_TMP/install.log" 2>&1 ||
    ts_fail "cmake --install failed: $(tail -5 "$TS_TMP/install.log")"
for pair in "$RULE:lib/udev/rules.d/70-tokensign.rules" \
    "$POLKIT:share/polkit-1/rules.d/50-tokensign-pcscd.rules" \
    "$SYSUSERS:lib/sysusers.d/tokensign.conf"; do
	src=${pair%%:*} dst=$inst/${pair#*:}
	[ -f "$dst" ] || ts_fail "not installed: $dst"
	cmp -s "$src" "$dst" || ts_fail "installed copy differs: $dst"
	ts_pass "installed ${pair#*:}"
done
mode=$(stat -c %a "$inst/share/polkit-1/rules.d/50-tokensign-pcscd.rules")
[ "$mode" = 644 ] || ts_fail "polkit rule mode $mode (polkitd wants 644)"
ts_pass "polkit rule mode 644"
[ -z "$(find "$inst/lib/udev/rules.d" -name '*polkit*')" ] ||
    ts_fail "polkit rule installed among the udev rules"
ts_pass "polkit rule not among udev rules"

# --- udev rule: a syntax checker after udev(7) ----------------------------
check_udev() {
	python3 - "$1" <<'PY'
import re, sys
MATCH = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK",
         "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTR", "ATTRS",
         "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT"}
ASSIGN = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR",
          "SYSCTL", "ENV", "TAG", "RUN", "LABEL", "GOTO", "IMPORT",
          "OPTIONS"}
WITH_ARG = {"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "IMPORT",
            "RUN", "SECLABEL"}
item = re.compile(r'\s*([A-Z]+)(\{([^}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
errors, labels, gotos = [], set(), []
path = sys.argv[1]
for n, raw in enumerate(open(path), 1):
    line = raw.strip()
    if not line or line.startswith("#"):
        continue
    if line.endswith("\\"):
        errors.append(f"{n}: continuation lines not expected"); continue
    pos, keys = 0, []
    while pos < len(line):
        m = item.match(line, pos)
        if not m:
            errors.append(f"{n}: cannot parse at column {pos + 1}: {line[pos:pos + 30]!r}")
            break
        key, arg, op, val = m.group(1), m.group(3), m.group(4), m.group(5)
        pos = m.end()
        if m.group(6) == "" and pos < len(line):
            errors.append(f"{n}: missing comma"); break
        match_op = op in ("==", "!=")
        if match_op and key not in MATCH:
            errors.append(f"{n}: {key} cannot be matched")
        if not match_op and key not in ASSIGN:
            errors.append(f"{n}: {key} cannot be assigned")
        if (arg is not None) != (key in WITH_ARG) and key not in ("RUN", "IMPORT"):
            errors.append(f"{n}: {key} {'needs' if arg is None else 'takes no'} {{attribute}}")
        if key == "LABEL": labels.add(val)
        if key == "GOTO": gotos.append((n, val))
        if key == "MODE" and not re.fullmatch(r"0[0-7]{3}", val):
            errors.append(f"{n}: MODE {val!r} is not octal")
        if key == "ATTR" and arg in ("idVendor", "idProduct") and \
           not re.fullmatch(r"[0-9a-f]{4}", val):
            errors.append(f"{n}: {arg} {val!r} is not 4 lowercase hex digits")
        keys.append((key, op, val))
    if any(k == "MODE" for k, _, _ in keys) and \
       not any(k == "GROUP" for k, _, _ in keys):
        errors.append(f"{n}: MODE without GROUP")
for n, label in gotos:
    if label not in labels:
        errors.append(f"{n}: GOTO to missing LABEL {label!r}")
for e in errors:
    print(f"{path}:{e}")
sys.exit(1 if errors else 0)
PY
}
out=$(check_udev "$RULE") || ts_fail "udev rule: $out"
ts_pass "udev rule passes the syntax checker"
# The checker catches what it should (each broken copy must fail).
i=0
for bad in 's/MODE="0660"/MODE="rw"/' 's/GOTO="tokensign_end"/GOTO="nowhere"/' \
    's/ATTR{idVendor}=="1050", /ATTR{idVendor}=="1050" /' 's/GROUP=/BOGUS=/' \
    's/TAG+="uaccess"/TAG+="uaccess/'; do
	i=$((i + 1))
	sed "$bad" "$RULE" > "$TS_TMP/bad$i.rules"
	! check_udev "$TS_TMP/bad$i.rules" >/dev/null ||
	    ts_fail "checker accepted a broken rule ($bad)"
done
ts_pass "checker rejects $i broken variants"

grep -Eq '^ATTR\{idVendor\}=="1050", ATTR\{idProduct\}=="0030", .*GROUP="tokensign"' "$RULE" ||
    ts_fail "no YubiHSM 2 rule for group tokensign"
grep -q 'TAG+="uaccess"' "$RULE" || ts_fail "no uaccess tag"
ts_pass "YubiHSM 2 (1050:0030) to group tokensign, tagged uaccess"
[[ "$(basename "$RULE")" < 73-seat-late.rules ]] ||
    ts_fail "rule sorts after 73-seat-late.rules: uaccess would be too late"
ts_pass "rule runs before 73-seat-late.rules"

# --- udev rule: udev's own parser -----------------------------------------
# systemd 252 has no `udevadm verify`; `udevadm test` parses every rules
# file and names the bad lines.  It runs in a private mount namespace with
# a tmpfs /run and an /etc/group that has tokensign, so nothing on the
# machine changes.
udev_parse() { # RULE-FILE WITH-GROUP(0|1) -> udevadm's lines on the file
	local f=$1 grp=$2
	cp /etc/group "$TS_TMP/group"
	[ "$grp" = 1 ] && echo 'tokensign:x:64999:' >> "$TS_TMP/group"
	unshare -m sh -c '
		mount -t tmpfs tmpfs /run &&
		mkdir -p /run/udev/rules.d &&
		cp "$1" /run/udev/rules.d/70-tokensign.rules &&
		mount --bind "$2" /etc/group &&
		udevadm test /sys/devices/virtual/mem/null 2>&1' sh "$f" "$TS_TMP/group" |
	    grep '70-tokensign.rules' || true
}
if command -v udevadm >/dev/null && [ -e /sys/devices/virtual/mem/null ] &&
    unshare -m true 2>/dev/null; then
	out=$(udev_parse "$RULE" 1)
	grep -q 'Reading rules file: /run/udev/rules.d/70-tokensign.rules' <<<"$out" ||
	    ts_fail "udevadm did not read the rule: $out"
	extra=$(grep -v 'Reading rules file' <<<"$out" || true)
	[ -z "$extra" ] || ts_fail "udevadm complains: $extra"
	ts_pass "udevadm parses the rule without a complaint"
	out=$(udev_parse "$RULE" 0)
	grep -q "Unknown group 'tokensign'" <<<"$out" ||
	    ts_fail "udevadm should miss the group here: $out"
	ts_pass "udevadm resolves GROUP (unknown group reported without it)"
	sed 's/GROUP=/GRUOP=/' "$RULE" > "$TS_TMP/bad-udevadm.rules"
	out=$(udev_parse "$TS_TMP/bad-udevadm.rules" 1)
	grep -q "Invalid key 'GRUOP'" <<<"$out" ||
	    ts_fail "udevadm missed a broken rule: $out"
	ts_pass "udevadm reports a broken copy"
else
	ts_log "udevadm or unshare unavailable: udev's own parser skipped"
fi

# --- polkit rule -------------------------------------------------------------
# polkitd (duktape) takes ECMAScript 5 only.
if grep -nE '=>|\blet\b|\bconst\b|`|\bclass\b' "$POLKIT" | grep -v '^\s*//' |
    grep -v ':\s*//' ; then
	ts_fail "polkit rule uses syntax newer than ECMAScript 5"
fi
ts_pass "polkit rule is ECMAScript 5"
if command -v node >/dev/null; then
	cat > "$TS_TMP/polkit-check.js" <<'JS'
// Evaluates a polkit rules file against a fake polkit object, as polkitd
// does, and prints one verdict per (action, group) case.
const fs = require("fs"), vm = require("vm");
const src = fs.readFileSync(process.argv[2], "utf8");
const Result = { NO: "no", YES: "yes", AUTH_SELF: "auth_self",
	AUTH_SELF_KEEP: "auth_self_keep", AUTH_ADMIN: "auth_admin",
	AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null };
const rules = [];
const polkit = { Result, addRule: (f) => rules.push(f),
	addAdminRule: () => {}, log: () => {}, spawn: () => "" };
new vm.Script(src, { filename: process.argv[2] }).runInNewContext({ polkit });
if (rules.length !== 1) { console.log("rules=" + rules.length); process.exit(1); }
const cases = [
	["org.debian.pcsc-lite.access_pcsc", "tokensign"],
	["org.debian.pcsc-lite.access_card", "tokensign"],
	["org.debian.pcsc-lite.access_pcsc", "users"],
	["org.debian.pcsc-lite.access_card", "users"],
	["org.freedesktop.login1.reboot", "tokensign"],
];
for (const [id, group] of cases) {
	const action = { id, lookup: () => "Virtual PCD 00 00" };
	const subject = { user: "svc", local: false, active: false,
		isInGroup: (g) => g === group, isInNetGroup: () => false };
	const r = rules[0](action, subject);
	console.log(id + " " + group + " " + (r == null ? "not_handled" : r));
}
JS
	out=$(node "$TS_TMP/polkit-check.js" "$POLKIT" 2>&1) ||
	    ts_fail "polkit rule does not evaluate: $out"
	want="org.debian.pcsc-lite.access_pcsc tokensign yes
org.debian.pcsc-lite.access_card tokensign yes
org.debian.pcsc-lite.access_pcsc users not_handled
org.debian.pcsc-lite.access_card users not_handled
org.freedesktop.login1.reboot tokensign not_handled"
	[ "$out" = "$want" ] || ts_fail "polkit verdicts: $out"
	ts_pass "polkit: tokensign may use pcscd and cards, nobody else, nothing else"
	sed 's/return polkit.Result.YES;/return polkit.Result.YES;;}/' "$POLKIT" \
	    > "$TS_TMP/bad-polkit.rules"
	! node "$TS_TMP/polkit-check.js" "$TS_TMP/bad-polkit.rules" >/dev/null 2>&1 ||
	    ts_fail "a broken polkit rule evaluated"
	ts_pass "a broken polkit rule is caught"
else
	ts_log "node not installed: polkit rule evaluation skipped"
fi

# --- sysusers.d ------------------------------------------------------------
if command -v systemd-sysusers >/dev/null; then
	mkdir -p "$TS_TMP/root/etc"
	systemd-sysusers --root="$TS_TMP/root" "$SYSUSERS" >/dev/null 2>&1 ||
	    ts_fail "systemd-sysusers rejects $SYSUSERS"
	grep -q '^tokensign:x:[0-9]*:$' "$TS_TMP/root/etc/group" ||
	    ts_fail "no tokensign group created"
	grep -q '^tokensign:x:[0-9]*:[0-9]*:[^:]*:/var/lib/tokensign:/usr/sbin/nologin$' \
	    "$TS_TMP/root/etc/passwd" || ts_fail "no tokensign user created"
	ts_pass "systemd-sysusers creates the tokensign user and group"
else
	ts_log "systemd-sysusers not installed: sysusers.d check skipped"
fi
ts_done

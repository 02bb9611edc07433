#!/usr/bin/env bash
# Smoke test in a real terminal: start `qcode file.py` in tmux at 80x24 on the default model,
# ask for a completion with ctrl+space, read the screen back, accept it with Tab; ask for a doc
# rewrite with F6, review its diff and accept it with ctrl+y; quit with the keyboard.
#
#   tests/tui_tests/tmux_smoke.sh            # uses `qcode` from PATH
#   QCODE="python -m tui.cli" tests/tui_tests/tmux_smoke.sh
#
# Exits 0 when every check passes; otherwise prints the screen and exits 1.
set -euo pipefail

QCODE=${QCODE:-qcode}
WAIT=${QCODE_SMOKE_WAIT:-300}  # seconds for the model to load and to answer
SOCKET="qcode-smoke-$$"
SESSION=smoke
work=$(mktemp -d)
trap 'tmux -L "$SOCKET" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

printf 'def add(a, b):\n    \n\n\nprint(add(1, 2))\n' >"$work/file.py"

screen() { tmux -L "$SOCKET" capture-pane -p -t "$SESSION"; }
keys() { tmux -L "$SOCKET" send-keys -t "$SESSION" "$@"; }
fail() {
    echo "tmux smoke: FAIL: $1" >&2
    echo "----- screen -----" >&2
    screen >&2 || true
    exit 1
}
# wait until the screen matches an extended regex (or time runs out)
wait_for() {
    local pattern=$1 what=$2 deadline=$((SECONDS + WAIT))
    until screen | grep -Eq -- "$pattern"; do
        ((SECONDS < deadline)) || fail "timed out waiting for $what"
        sleep 0.5
    done
}

tmux -L "$SOCKET" new-session -d -s "$SESSION" -x 80 -y 24 \
    "cd '$work' && TERM=xterm-256color $QCODE file.py; echo qcode-exited-\$?; sleep 30"

wait_for '│ (ready|model not loaded)' "the model to load"
screen | grep -q 'model not loaded' && fail "the model did not load"
screen | grep -Eq '^ ?1 +def add\(a, b\):' || fail "the file is not in the editor"
# the footer is drawn after the editor, so its keys are waited for, not read at once
wait_for '\^space Complete' "the footer's completion key"
for key in 'f1 Help' '\^s Save' '\^o Open' '\^l Prompt'; do
    wait_for "$key" "the footer's '$key'"
done

# the cursor starts at 1:1; line 2 holds the indentation to complete after
keys Down End
sleep 0.5
keys C-Space
wait_for 'Tab accepts|no suggestion' "the suggestion"
screen | grep -q 'no suggestion' && fail "the model suggested nothing"
line2=$(screen | sed -n 2p)
[[ $line2 =~ ^\ ?2\ +[^[:space:]] ]] || fail "no ghost text on line 2: '$line2'"
screen | grep -Eq 'suggest [0-9]+ ms' || fail "the time to suggestion is not shown"
ghost=$(sed -E 's/^ ?2 +//; s/ +$//' <<<"$line2")

keys Tab
sleep 1
screen | grep -q 'file.py ●' || fail "accepting did not change the buffer"
[[ $(screen | sed -n 2p) == *"$ghost"* ]] || fail "the accepted text differs from the ghost"

# a rewrite, reviewed and accepted with the keyboard: the buttons and keys stay on screen
before=$(screen | sed -n 1,20p)
keys F6
wait_for 'Accept \^y|doc failed|refused' "the diff review"
screen | grep -q 'Accept \^y' || fail "no diff review for the doc rewrite"
screen | grep -q 'Reject esc' || fail "the Reject button is not on screen"
# the review's footer is recomposed after the review is drawn: wait for it
wait_for '\^y Accept' "the footer's accept key"
keys C-y
wait_for 'doc applied' "the rewrite to be applied"
[[ $(screen | sed -n 1,20p) != "$before" ]] || fail "accepting the rewrite did not change the buffer"

# quit: unsaved changes ask first (a typed y is no answer); the file on disk stays as it was
keys C-q
wait_for 'Quit without saving' "the quit confirmation"
keys y
sleep 0.5
screen | grep -q 'Quit without saving' || fail "a typed y answered the quit confirmation"
keys Left Enter
wait_for 'qcode-exited-0' "qcode to exit"
grep -q 'add(1, 2)' "$work/file.py" || fail "the file changed on disk"
[[ $(sed -n 2p "$work/file.py") == "    " ]] || fail "the file was saved without asking"

echo "tmux smoke: OK (suggested: $ghost)"

#!/usr/bin/env bash
# Renders the GUI's screenshots in docs/gui/: every screen (the form, the file picker, a refused
# connection, calc, chat, sum, quiz, a session the server ended) at 360, 800 and 1600 px wide.
# A real window (examples/gui) under Xvfb, drawn by Mesa's software OpenGL, typed into with
# xdotool and captured with ImageMagick's import, then reduced to 64 colours.
#
#   cargo build --features gui --example gui --bin securetcp-client && docs/gui/screenshots.sh
#
# Needs the Debian packages xvfb xdotool imagemagick python3 (and the GUI's libraries, docs/clients.md).
# Runs servers on 127.0.0.1 ports 5701-5706 in a scratch folder, and ends them (5706: nobody).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out="$repo/docs/gui"
bin=${SHOT_BIN:-$repo/target/debug}
server="$bin/securetcp"
gui="$bin/examples/gui"
client="$bin/securetcp-client"
work=$(mktemp -d)
cd "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

Xvfb :57 -screen 0 1700x1100x24 -nolisten tcp 2>/dev/null &
pids+=($!)
export DISPLAY=:57 LIBGL_ALWAYS_SOFTWARE=1
unset WAYLAND_DISPLAY
sleep 1

# A server in the scratch folder (its first start makes certs/ there, which the GUI trusts).
start_server() { # port, options...
  local port=$1; shift
  "$server" 127.0.0.1 "$port" "$@" >/dev/null 2>&1 &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 50); do [ -f certs/ca.pem ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}

# Starts the GUI with the given options and waits for its window.
open_gui() {
  "$gui" "$@" 2>/dev/null &
  gui_pid=$!
  pids+=($gui_pid)
  win=
  for _ in $(seq 300); do
    win=$(xdotool search --name '^securetcp$' 2>/dev/null | head -1) && [ -n "$win" ] && break
    sleep 0.1
  done
  [ -n "$win" ] || { echo "no window after 30 s: $*" >&2; exit 1; }
  xdotool windowsize "$win" 800 600
  sleep 1.5
  xdotool windowfocus "$win"
}

close_gui() { kill "$gui_pid"; wait "$gui_pid" 2>/dev/null || true; }

type_line() { # text: typed into the focused field, then Enter
  xdotool type --delay 20 "$1"
  xdotool key Return
  sleep 0.6
}

# Three captures of the window as it is: 360x640, 800x600 and 1600x900.
shoot() { # name
  local size w h
  for size in 360x640 800x600 1600x900; do
    w=${size%x*} h=${size#*x}
    xdotool windowsize "$win" "$w" "$h"
    sleep 1.2
    import -window "$win" "png:$work/raw.png"
    convert "$work/raw.png" -dither None -colors 64 -define png:compression-level=9 "png8:$out/$1-$w.png"
  done
  xdotool windowsize "$win" 800 600
  sleep 0.5
}

# The form, as `gui 127.0.0.1 5701 --name ann` fills it, then the picker from CA's Choose…
# (where that button is in the 800x600 window).
start_server 5701
open_gui 127.0.0.1 5701 --name ann
shoot form
xdotool mousemove --window "$win" 675 131 click 1
sleep 0.8
shoot picker
xdotool key Escape
sleep 0.5
# Calc: results, an error from the server, a line refused before sending.
xdotool key Return
sleep 1.5
type_line '+ 3 4'
type_line '(2 + 4) * 7'
type_line '1 / 0'
type_line '100 - 58 / 2'
type_line '3 +'
shoot calc
close_gui

# A refused connection: nothing listens on 5706.
open_gui 127.0.0.1 5706 --name ann
xdotool key Return
sleep 1.5
shoot refused
close_gui

# Chat: bob on the terminal client (fed from a pipe), ann in the window; Chinese and emoji.
start_server 5702 --service chat
chat_server=$server_pid
mkfifo bob.in
"$client" --name bob 127.0.0.1 5702 <bob.in >/dev/null 2>&1 &
pids+=($!)
exec 4>bob.in
sleep 1
open_gui 127.0.0.1 5702 --name ann
xdotool key Return
sleep 1.5
echo 'hi ann, bob here from a terminal' >&4
sleep 0.5
type_line 'hello bob, this is the window'
echo '你好! こんにちは 👋 🎉' >&4
sleep 0.5
type_line 'and the window shows them all'
shoot chat
# The server stops while the window is on it.
kill -TERM "$chat_server"
sleep 1.5
shoot ended
exec 4>&-
close_gui

# Sum: two exchanges with "Big Server", whose number is 42, and one refused before sending.
start_server 5703 --service sum --name "Big Server" --number 42
open_gui 127.0.0.1 5703 --name ann
xdotool key Return
sleep 1.5
type_line 7
type_line 58
type_line 250
shoot sum
close_gui

# Quiz: plain TCP through a small tap (python3) that copies what the server says to a file, so
# the question's answer can be typed: right, right, then wrong on purpose.
start_server 5704 --service quiz --no-tls
python3 - 5705 5704 "$work/quiz.trace" <<'PY' &
import socket, sys, threading
listen, target, trace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen))
server.listen(1)
window, _ = server.accept()
upstream = socket.create_connection(("127.0.0.1", target))
def copy(src, dst, log):
    while data := src.recv(4096):
        dst.sendall(data)
        if log:
            with open(trace, "ab") as f:
                f.write(data)
    dst.shutdown(socket.SHUT_WR)
threading.Thread(target=copy, args=(upstream, window, True), daemon=True).start()
copy(window, upstream, False)
PY
pids+=($!)
sleep 0.5
open_gui 127.0.0.1 5705 --no-tls
xdotool key Return
sleep 1.5
answer() { # the sum of the last question the server asked
  grep -o 'QUIZ [0-9]* + [0-9]*' "$work/quiz.trace" | tail -1 | awk '{print $2 + $4}'
}
type_line "$(answer)"
type_line "$(answer)"
type_line "$(( $(answer) + 1 ))"
shoot quiz
close_gui

ls -l "$out"/*.png | awk '{s += $5} END {print NR " screenshots, " s " bytes"}'

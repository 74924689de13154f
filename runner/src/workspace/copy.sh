# The copy step of a rollout (see runner/src/workspace.rs): extracts the seed's checkout into the
# workspace, then prints the copy's mark, a ctime that the diff step's walk compares with. Set
# before this text: ts_seed, ts_workspace, ts_archive, and ts_env for a rollout started from an
# environment snapshot (see runner/src/environment.rs).
set -e
# The checkout's parts (`checkout.tar`, and `checkout.1.tar` for a large one: see
# runner/src/repo/checkout.rs), extracted at once.
# The workspace's own folder keeps its metadata (--no-overwrite-dir): on Kubernetes it is an
# emptyDir the agent's user may write in but does not own, so tar's complaints about `.` alone
# are no failure; any other complaint is.
pids=()
i=0
for part in "$ts_seed/$ts_archive" "$ts_seed/${ts_archive%.tar}".[0-9]*.tar; do
  if [ -f "$part" ]; then
    i=$((i + 1))
    (tar --no-overwrite-dir -xf "$part" -C "$ts_workspace" 2>"/tmp/.ts-tar-$i" ||
      ! grep -v -e '^tar: \.: ' -e '^tar: Exiting with failure' "/tmp/.ts-tar-$i" >&2) &
    pids+=("$!")
  fi
done
if [ "${#pids[@]}" -eq 0 ]; then echo "the seed has no checkout" >&2; exit 3; fi
# An environment snapshot's files (what the setup left in the workspace that git ignores, and
# $HOME), put back beside the checkout, before the mark: they are not the agent's change.
for part in workspace tmp; do
  if [ -n "${ts_env:-}" ] && [ -d "$ts_env/$part" ]; then
    dest="$ts_workspace"; [ "$part" = tmp ] && dest=/tmp
    # Its entries, not `.`: the destination's own folder keeps its owner and mode.
    (set -o pipefail; cd "$ts_env/$part" && find . -mindepth 1 -maxdepth 1 -printf '%P\0' |
      tar --null -T - -cf - | tar --no-overwrite-dir -xf - -C "$dest") &
    pids+=("$!")
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
# The mark must be later than every ctime the copy left: else the copy's last changes (tar sets
# its directories' times at the very end) look like the agent's, and the diff step walks the
# tree. The kernel stamps ctimes from a clock that ticks every few milliseconds, so a file made
# right after the copy can carry the same ctime as its last change; marks are made until one is
# later than a file made once the copy had ended (a tick at most; bounded all the same).
: >/tmp/.ts-copy-ended
n=0
while [ "$n" -lt 1000 ]; do
  n=$((n + 1))
  : >"/tmp/.ts-copied-$n"
  # Without a `stat` that prints nanoseconds, no mark: the diff step reads every file again.
  set -- $(stat -c %.9Z /tmp/.ts-copy-ended "/tmp/.ts-copied-$n" 2>/dev/null) || true
  if [ "$#" -ne 2 ]; then exit 0; fi
  if [ "$1" != "$2" ]; then break; fi
done
printf '%s\n' "$2"

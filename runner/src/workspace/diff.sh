# The diff step of a rollout (see runner/src/workspace.rs): prints `git diff --numstat -z`, an
# empty record, then the binary patch, against the seed's read-only git directory. Set before this
# text: ts_seed, ts_workspace, ts_mark (a `find -newerct` reference just before the copy ended;
# empty without one), ts_max_bytes, ts_oversized_exit, ts_max_changed, ts_max_dirs,
# ts_unstated_index.
find /tmp -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null
set -e -o pipefail
export GIT_DIR="$ts_seed/tree/.git" GIT_WORK_TREE="$ts_workspace" GIT_INDEX_FILE=/tmp/.ts-index \
       GIT_OBJECT_DIRECTORY=/tmp/.ts-objects GIT_ALTERNATE_OBJECT_DIRECTORIES="$ts_seed/objects" \
       GIT_LITERAL_PATHSPECS=1 LC_ALL=C
if [ ! -d "$ts_workspace" ]; then echo "the workspace is gone" >&2; exit 3; fi
mkdir -p /tmp/.ts-objects
cd "$ts_workspace"

# How the index is brought up to date: `all` reads every file again; `stat` trusts the seed's stat
# data except for what changed since the copy, and lets `git add -A` walk the tree; `path` hands
# git only the paths that changed.
how=all
count() { tr -cd '\0' <"$1" | wc -c; }
if [ -n "$ts_mark" ]; then
  # One walk: what changed since the copy (by ctime: nothing in the sandbox can set one back) —
  # files and symlinks, directories (and which of those kept their mtime: renamed or chmod-ed,
  # not written), git directories other than the workspace's own — and, among the changed files,
  # any too large to keep.
  if find . -xdev \( -name .git \( -path ./.git -o -fprintf /tmp/.ts-nested '%P\0' \) -prune \) \
       -o -newerct "$ts_mark" \
       \( -type d \( -newermt "$ts_mark" -o -fprintf /tmp/.ts-still '%P\0' \) \
          -fprintf /tmp/.ts-dirs '%P\0' \
          -o \( -type f -o -type l \) -fprintf /tmp/.ts-changed '%P\0' \
          , -type f -size "+${ts_max_bytes}c" -fprintf /tmp/.ts-big '%s\t%P\n' \)
  then walked=yes; else walked=no; fi
  if [ -s /tmp/.ts-big ]; then head -n 3 /tmp/.ts-big; exit "$ts_oversized_exit"; fi
  if [ "$walked" = yes ] && [ "$(count /tmp/.ts-changed)" -le "$ts_max_changed" ]; then
    how=stat
    if [ ! -s /tmp/.ts-nested ] && [ "$(count /tmp/.ts-dirs)" -le "$ts_max_dirs" ] \
       && [ -f "$GIT_DIR/$ts_unstated_index" ]; then
      how=path
    fi
  fi
fi

# The changed directories, against the base: what is gone from those that were in it (a path
# that is no longer there, or no longer a file or no longer a directory as it was), and which are
# new (not in the base: all of their content is looked at). A directory of the base that may hold
# another's content — one renamed into its place (its ctime changed, not its mtime), or one
# holding an entry older than the copy that the base does not have there — means `stat` instead.
: >/tmp/.ts-gone
: >/tmp/.ts-new
if [ "$how" = path ] && [ -s /tmp/.ts-dirs ]; then
  declare -A in_base=() base_entry=()
  # The entries of each (`-t`: with the folders on the way); the root's on their own, since a
  # pathspec for it would match every entry of the folders on the way to the others.
  : >/tmp/.ts-tree
  : >/tmp/.ts-below
  while IFS= read -r -d '' dir; do
    if [ -n "$dir" ]; then printf '%s/\0' "$dir" >>/tmp/.ts-below; else git ls-tree -z HEAD >/tmp/.ts-tree; fi
  done </tmp/.ts-dirs
  xargs -0 -r git ls-tree -z -t HEAD -- </tmp/.ts-below >>/tmp/.ts-tree
  while IFS= read -r -d '' entry; do
    path=${entry#*$'\t'}
    case $path in */*) parent=${path%/*} ;; *) parent= ;; esac
    in_base["/$parent"]=1
    base_entry["/$path"]=1
    case ${entry%%$'\t'*} in
      *' tree '* | *' commit '*)
        if [ -L "$path" ] || [ ! -d "$path" ]; then printf '%s\0' "$path" >>/tmp/.ts-gone; fi ;;
      *)
        if [ ! -L "$path" ] && [ ! -f "$path" ]; then printf '%s\0' "$path" >>/tmp/.ts-gone; fi ;;
    esac
  done </tmp/.ts-tree
  starts=()
  while IFS= read -r -d '' dir; do
    if [ -z "${in_base["/$dir"]}" ]; then
      printf '%s\0' "$dir" >>/tmp/.ts-new
    elif [ -n "$dir" ]; then
      starts+=("./$dir")
    else
      starts+=(.)
    fi
  done </tmp/.ts-dirs
  while IFS= read -r -d '' dir; do
    if [ -n "${in_base["/$dir"]}" ]; then how=stat; fi
  done </tmp/.ts-still
  if [ "$how" = path ] && [ ${#starts[@]} -gt 0 ]; then
    find "${starts[@]}" -mindepth 1 -maxdepth 1 ! -name .git ! -newerct "$ts_mark" -print0 \
      >/tmp/.ts-old
    while IFS= read -r -d '' path; do
      if [ -z "${base_entry["/${path#./}"]}" ]; then how=stat; fi
    done </tmp/.ts-old
  fi
fi

case $how in
  path)
    # An index of the base without stat data: every entry looked at is read again. git looks
    # only at the paths named: what is gone is removed; what changed, and what the new
    # directories hold, is added — unless ignored (only an untracked file can be).
    cp "$GIT_DIR/$ts_unstated_index" /tmp/.ts-index
    sort -z -u /tmp/.ts-changed >/tmp/.ts-sorted
    xargs -0 -r git ls-tree -r -z --name-only HEAD -- </tmp/.ts-sorted | sort -z -u >/tmp/.ts-base
    comm -z -23 /tmp/.ts-sorted /tmp/.ts-base >/tmp/.ts-untracked
    : >/tmp/.ts-ignored
    if [ -s /tmp/.ts-untracked ]; then
      xargs -0 git ls-files -z -o -i --exclude-standard -- </tmp/.ts-untracked \
        | sort -z -u >/tmp/.ts-ignored
    fi
    comm -z -23 /tmp/.ts-sorted /tmp/.ts-ignored >/tmp/.ts-add
    if [ -s /tmp/.ts-new ]; then
      xargs -0 git ls-files -z -o --exclude-standard -- </tmp/.ts-new >>/tmp/.ts-add
    fi
    if [ -s /tmp/.ts-gone ]; then
      xargs -0 git ls-tree -r -z --name-only HEAD -- </tmp/.ts-gone \
        | git update-index -z --force-remove --stdin
    fi
    if [ -s /tmp/.ts-add ]; then
      sort -z -u /tmp/.ts-add | git update-index -z --add --remove --replace --stdin
    fi
    ;;
  stat)
    # The seed's index, copied now: newer than every file of the checkout, so no entry of it is
    # "racily clean"; what changed since the copy has its stat data dropped and is read again.
    cp "$GIT_DIR/index" /tmp/.ts-index
    xargs -0 -r git ls-files --stage -z -- </tmp/.ts-changed | git update-index -z --index-info
    git add -A
    ;;
  *)
    git read-tree HEAD
    git add -A
    ;;
esac
# One diff, renames found once: the numstat records, an empty record, then the patch.
git diff --cached --find-renames --numstat --binary -z HEAD

# Writes OUT (a header defining DETOPS_GIT_COMMIT) from the git checkout at
# SRC; run at every build, rewrites the file only when the commit changes, so
# runs never record a stale commit and unchanged builds recompile nothing.
# A checkout with uncommitted changes to tracked files gets "-dirty".
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT commit)
  set(commit unknown)
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE changes ERROR_QUIET)
  if(changes)
    set(commit "${commit}-dirty")
  endif()
endif()
file(WRITE ${OUT}.tmp "#pragma once\n#define DETOPS_GIT_COMMIT \"${commit}\"\n")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)

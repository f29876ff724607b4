# One fuzz target's regression run (cmake -P, from ctest): its seed corpus, then RUNS mutated inputs
# from seed 1. libFuzzer writes the new inputs it keeps, and any crashing input, under WORK (emptied
# first, so each run starts from the same corpus), never into the committed corpus.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/new)
execute_process(
  COMMAND ${TARGET} ${WORK}/new ${CORPUS} -runs=${RUNS} -seed=1 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix=${WORK}/ -print_final_stats=1
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TARGET}: exit ${rc}; the input is under ${WORK} (replay: ${TARGET} <file>)")
endif()

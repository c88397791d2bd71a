# Unit tests of the checker half of raftkv-jepsen (jepsen/checker.cmake):
# the history format, the register linearizability checker (hand-made
# histories, and a generated 60 s / 10-client history as a benchmark),
# the set checker, and the checkers of the watch and lease workloads.
raftkv_add_test(jepsen_history_test SOURCES history_test.cc
                LIBS raftkv_jepsen_checker)
raftkv_add_test(jepsen_linearizability_test SOURCES linearizability_test.cc
                LIBS raftkv_jepsen_checker)
raftkv_add_test(jepsen_linearizability_bench_test
                SOURCES linearizability_bench_test.cc
                LIBS raftkv_jepsen_checker TIMEOUT 120)
raftkv_add_test(jepsen_set_checker_test SOURCES set_checker_test.cc
                LIBS raftkv_jepsen_checker)
raftkv_add_test(jepsen_watch_checker_test SOURCES watch_checker_test.cc
                LIBS raftkv_jepsen_checker)
raftkv_add_test(jepsen_lease_checker_test SOURCES lease_checker_test.cc
                LIBS raftkv_jepsen_checker)

# smoke_tests.cmake: short raftkv-jepsen runs against a real cluster, in
# ctest (so in scripts/test and CI): a 3-node register run under kill and
# partition must be valid, a set run under kill, pause and clock must be
# valid, a 4-node register run under membership changes (member nemesis)
# must be valid, a watch run under a kill and a lease run under a pause
# must be valid, and --unsafe_serve_stale_reads must be caught as invalid:
# under a paused leader on the root loopback (runs everywhere) and under a
# leader partition (root only). About 115 s in all. Outputs go to the build
# directory.
if(NOT TARGET raftkv-jepsen)
  message(FATAL_ERROR "jepsen_smoke_test needs the raftkv-jepsen target "
                      "(jepsen/runner.cmake)")
endif()
raftkv_add_test(jepsen_smoke_test
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/smoke_test.cc
                LIBS raftkv_jepsen_runner TIMEOUT 150)
target_compile_definitions(jepsen_smoke_test PRIVATE
  RAFTKV_JEPSEN_BINARY="$<TARGET_FILE:raftkv-jepsen>"
  RAFTKV_JEPSEN_SMOKE_DIR="${CMAKE_BINARY_DIR}/jepsen-smoke")
add_dependencies(jepsen_smoke_test raftkv-jepsen raftkvd)

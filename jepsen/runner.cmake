# runner.cmake: the raftkv-jepsen executable (cluster in a private network
# namespace, nemeses, workloads). Included from jepsen/CMakeLists.txt after
# checker.cmake and report.cmake, and needs both libraries: without either
# the configuration stops (the smoke tests depend on this executable). The
# namespace, the firewall and the subprocess helpers are fault/'s
# (raftkv_fault), shared with raftkv-bench.
if(NOT TARGET raftkv_jepsen_checker OR NOT TARGET raftkv_jepsen_report)
  message(FATAL_ERROR "raftkv-jepsen needs raftkv_jepsen_checker and "
                      "raftkv_jepsen_report (jepsen/checker.cmake, "
                      "report.cmake)")
endif()
add_library(raftkv_jepsen_runner STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/cluster.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/nemesis.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/node_process.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/recorder.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/test_runner.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/workload.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/watch_workload.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/lease_workload.cc
)
target_link_libraries(raftkv_jepsen_runner PUBLIC raftkv_jepsen_checker
                      raftkv_jepsen_report raftkv_client raftkv_fault
                      raftkv_local_cluster glog::glog)

add_executable(raftkv-jepsen ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
target_link_libraries(raftkv-jepsen PRIVATE raftkv_jepsen_runner
                      gflags::gflags)
# The harness starts build/bin/raftkvd.
add_dependencies(raftkv-jepsen raftkvd)

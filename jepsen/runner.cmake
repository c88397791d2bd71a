# runner.cmake: the raftkv-jepsen executable (cluster in a private network
# namespace, nemeses, workloads). Included from jepsen/CMakeLists.txt after
# checker.cmake and report.cmake; it needs both libraries and is skipped
# (with a message) while either is missing, so the tree always configures.
if(TARGET raftkv_jepsen_checker AND TARGET raftkv_jepsen_report)
  add_library(raftkv_jepsen_runner STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/cluster.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/firewall.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/nemesis.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/netns.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/node_process.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/recorder.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/subprocess.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/test_runner.cc
    ${CMAKE_CURRENT_SOURCE_DIR}/workload.cc
  )
  target_link_libraries(raftkv_jepsen_runner PUBLIC raftkv_jepsen_checker
                        raftkv_jepsen_report raftkv_client
                        raftkv_local_cluster glog::glog)

  add_executable(raftkv-jepsen ${CMAKE_CURRENT_SOURCE_DIR}/main.cc)
  target_link_libraries(raftkv-jepsen PRIVATE raftkv_jepsen_runner
                        gflags::gflags)
  # The harness starts build/bin/raftkvd.
  add_dependencies(raftkv-jepsen raftkvd)
else()
  message(STATUS "raftkv-jepsen: skipped until the checker and report "
                 "libraries exist (jepsen/checker.cmake, report.cmake)")
endif()

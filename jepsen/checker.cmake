# The checker half of raftkv-jepsen: the history format (history.h/.cc), the
# linearizability checker of the register workload, the set checker, and
# the checkers of the watch and lease workloads.
# Pure computation: no I/O beyond the streams it is given, no threads.
add_library(raftkv_jepsen_checker STATIC history.cc linearizability.cc
            set_checker.cc watch_checker.cc lease_checker.cc)
target_link_libraries(raftkv_jepsen_checker PUBLIC raftkv_util raftkv_json
                      glog::glog)
target_include_directories(raftkv_jepsen_checker PUBLIC ${CMAKE_SOURCE_DIR})

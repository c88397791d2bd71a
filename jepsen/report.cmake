# report.cmake: the report of a raftkv-jepsen run (results.json, latency.svg,
# rate.svg, index.html), and its test. Included from jepsen/CMakeLists.txt.
add_library(raftkv_jepsen_report STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/report.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/report_html.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/report_model.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/report_plots.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/svg_plot.cc
)
target_link_libraries(raftkv_jepsen_report PUBLIC raftkv_jepsen_checker
                      raftkv_util raftkv_json)

# The test is registered here rather than in tests/jepsen/: jepsen/ is
# configured before tests/, and raftkv_test_main (defined in tests/) is
# resolved when the build is generated.
include(GoogleTest)
add_executable(jepsen_report_test
               ${CMAKE_SOURCE_DIR}/tests/jepsen/report_test.cc)
target_link_libraries(jepsen_report_test PRIVATE raftkv_test_main
                      raftkv_jepsen_report)
# PRE_TEST: a binary that crashes at start fails its test, not the build.
gtest_discover_tests(jepsen_report_test DISCOVERY_MODE PRE_TEST
                     PROPERTIES TIMEOUT 120)

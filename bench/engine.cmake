# Engine CPU benchmarks (Google Benchmark). Never asserts; see docs/benchmarks.md.
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(turbovid-engine-bench ${PROJECT_SOURCE_DIR}/bench/engine_bench.cc)
  tv_target(turbovid-engine-bench)
  target_link_libraries(turbovid-engine-bench PRIVATE tv_engine benchmark::benchmark)
endif()
# `turbovid-engine bench` with its end-to-end stage (Pipeline::Generate, prompt → MP4 file) on the
# tiny random model: the JSON must carry positive generate_e2e rows (checks the report, not a speed).
if(TV_BUILD_TESTS)
  add_test(NAME engine_bench_e2e
    COMMAND ${PROJECT_SOURCE_DIR}/tests/engine_bench_e2e_test.sh $<TARGET_FILE:turbovid-engine>)
  set_tests_properties(engine_bench_e2e PROPERTIES LABELS "cpu;engine" TIMEOUT 300)
endif()

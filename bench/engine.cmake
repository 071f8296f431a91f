# Engine CPU benchmarks (Google Benchmark). Never asserts; see docs/benchmarks.md.
find_package(benchmark QUIET)
if(benchmark_FOUND)
  add_executable(turbovid-engine-bench ${PROJECT_SOURCE_DIR}/bench/engine_bench.cc)
  tv_target(turbovid-engine-bench)
  target_link_libraries(turbovid-engine-bench PRIVATE tv_engine benchmark::benchmark)
endif()

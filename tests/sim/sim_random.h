// SimRandom: the simulator's only source of randomness, a std::mt19937_64
// seeded from the run's seed. Every random choice of a run goes through one
// instance, in a deterministic order, so a seed replays exactly. Never
// seeded from the clock or the environment.
#pragma once

#include <cstdint>
#include <random>

namespace raftkv::sim {

class SimRandom {
 public:
  explicit SimRandom(uint64_t seed) : engine_(seed) {}

  uint64_t Next() { return engine_(); }
  // Uniform in [0, n); n must be > 0.
  uint64_t Below(uint64_t n) { return engine_() % n; }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  // True with probability p.
  bool Chance(double p) {
    return static_cast<double>(engine_() >> 11) * 0x1.0p-53 < p;
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace raftkv::sim

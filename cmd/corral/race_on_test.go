//go:build race

package main

// raceSlowdown is how much slower the race detector makes CPU-bound work
// here (decoding 60,000 journal records: 0.6 s → 3.7 s alone, up to 5.6 s
// under CI's parallel load): bounds meant to catch a regression scale by it.
const raceSlowdown = 3

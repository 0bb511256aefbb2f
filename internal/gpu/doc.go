// Package gpu owns reading how much GPU memory each process uses, where
// NVIDIA's tools are installed (nvidia-smi). A WebUI's tree holds its
// model in GPU memory: a stop that leaves one worker alive leaves
// gigabytes of it taken, which no RSS figure shows. The supervisor sums
// the figures per tree; a verified stop checks that no member of the
// stopped tree is still listed.
package gpu

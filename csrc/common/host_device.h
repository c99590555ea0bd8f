// NNFAST_HOST_DEVICE marks a small inline function as callable from CUDA kernels too; plain
// C++ compilers see nothing.
#pragma once

#ifdef __CUDACC__
#define NNFAST_HOST_DEVICE __host__ __device__
#else
#define NNFAST_HOST_DEVICE
#endif

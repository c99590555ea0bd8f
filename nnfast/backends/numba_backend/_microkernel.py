"""The GEMM microkernel, written in LLVM vector IR through Numba's intrinsic API.

Plain Numba cannot keep a block of C in vector registers: LLVM vectorizes a loop's
innermost dimension but keeps what crosses iterations in memory, which caps a Numba GEMM
at about half of OpenBLAS. This kernel states the register blocking directly, as BLIS
microkernels do: MR rows of C, each held in two vector registers (NR = 2 vectors' worth of
columns), updated by one broadcast element of op(a) times one row of a B panel per step
of K. LLVM IR vectors are portable: LLVM lowers them to AVX-512, AVX2, SSE or NEON
registers, whatever the CPU Numba compiles for.

    tile[r, q] = sum_p a[a_offset + row(r) * a_row_stride + p * a_k_stride]
                       * b[b_offset + p * b_k_stride + q]          r < MR, q < NR

where row(r) = min(r, rows - 1): a ragged bottom edge repeats its last row, and the caller
keeps only the first `rows` rows of the tile. The sum over p runs in order, with one fused
multiply-add per step where the CPU has FMA.
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic


def _vector_bytes() -> int:
    """The width of the widest float vector registers of the CPU Numba compiles for: the
    host, or NUMBA_CPU_NAME with NUMBA_CPU_FEATURES (e.g. "+avx2,+fma") for portable caches."""
    if config.CPU_NAME and config.CPU_NAME != "host":
        enabled = {f[1:] for f in (config.CPU_FEATURES or "").split(",") if f.startswith("+")}
    else:
        enabled = {name for name, on in llvm.get_host_cpu_features().items() if on}
    if "avx512f" in enabled:
        return 64
    if "avx" in enabled:
        return 32
    return 16  # SSE2 or NEON, which every x86-64 and aarch64 CPU has


VECTOR_BYTES = _vector_bytes()
PANEL_BYTES = 2 * VECTOR_BYTES  # NR = PANEL_BYTES // itemsize columns per tile
# Accumulators: MR * 2 vector registers, plus two for the B row and one for the broadcast.
# AVX-512 and NEON have 32 registers, AVX2 and SSE 16.
MR = 8 if VECTOR_BYTES == 64 else 6


def _is_float_array(*arrays) -> bool:
    return all(isinstance(x, types.Array) and isinstance(x.dtype, types.Float) for x in arrays) \
        and len({x.dtype for x in arrays}) == 1


class _Emitter:
    """IR for one microkernel call: the product loop, then a store of the MR x NR results."""

    def __init__(self, context, builder, dtype):
        self.context, self.builder = context, builder
        self.itemsize = dtype.bitwidth // 8
        self.lanes = VECTOR_BYTES // self.itemsize
        self.vector = ir.VectorType(context.get_value_type(dtype), self.lanes)
        self.i64 = ir.IntType(64)
        self.fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vector, [self.vector] * 3),
            f"llvm.fmuladd.v{self.lanes}f{dtype.bitwidth}")

    def const(self, value):
        return ir.Constant(self.i64, value)

    def data(self, array_type, value):
        return cgutils.create_struct_proxy(array_type)(self.context, self.builder, value=value).data

    def load_vector(self, base, index):
        address = self.builder.gep(base, [index])
        return self.builder.load(self.builder.bitcast(address, self.vector.as_pointer()), align=self.itemsize)

    def store_vector(self, value, base, index):
        address = self.builder.gep(base, [index])
        self.builder.store(value, self.builder.bitcast(address, self.vector.as_pointer()), align=self.itemsize)

    def splat(self, scalar):
        b, i32 = self.builder, ir.IntType(32)
        v = b.insert_element(ir.Constant(self.vector, ir.Undefined), scalar, ir.Constant(i32, 0))
        return b.shuffle_vector(v, ir.Constant(self.vector, ir.Undefined),
                                ir.Constant(ir.VectorType(i32, self.lanes), [0] * self.lanes))

    def products(self, k, a_ptr, a_offset, a_row_stride, a_k_stride, rows, b_ptr, b_offset, b_k_stride):
        """The MR x 2 accumulator vectors after the loop over K (zero when k == 0)."""
        b = self.builder
        last_row = b.sub(rows, self.const(1))
        row_starts = []
        for r in range(MR):
            row = b.select(b.icmp_signed("<", self.const(r), last_row), self.const(r), last_row)
            row_starts.append(b.add(a_offset, b.mul(row, a_row_stride)))
        zero = ir.Constant(self.vector, None)
        entry = b.basic_block
        loop = b.append_basic_block("microkernel.loop")
        done = b.append_basic_block("microkernel.done")
        b.cbranch(b.icmp_signed(">", k, self.const(0)), loop, done)

        b.position_at_end(loop)
        p = b.phi(self.i64)
        p.add_incoming(self.const(0), entry)
        acc = [b.phi(self.vector) for _ in range(2 * MR)]
        for phi in acc:
            phi.add_incoming(zero, entry)
        b_row = b.add(b_offset, b.mul(p, b_k_stride))
        b_vectors = [self.load_vector(b_ptr, b.add(b_row, self.const(h * self.lanes))) for h in range(2)]
        a_step = b.mul(p, a_k_stride)
        updated = []
        for r in range(MR):
            x = self.splat(b.load(b.gep(a_ptr, [b.add(row_starts[r], a_step)])))
            updated += [b.call(self.fmuladd, [x, b_vectors[h], acc[2 * r + h]]) for h in range(2)]
        p_next = b.add(p, self.const(1))
        p.add_incoming(p_next, loop)
        for phi, value in zip(acc, updated):
            phi.add_incoming(value, loop)
        b.cbranch(b.icmp_signed("<", p_next, k), loop, done)

        b.position_at_end(done)
        results = []
        for value in updated:
            result = b.phi(self.vector)
            result.add_incoming(zero, entry)
            result.add_incoming(value, loop)
            results.append(result)
        return results


@intrinsic
def microkernel(typingctx, k, a, a_offset, a_row_stride, a_k_stride, rows, b, b_offset,
                b_k_stride, tile):
    """tile (MR, NR) = op(a) rows times a B panel, as in the module docstring."""
    if not _is_float_array(a, b, tile):
        return None
    sig = types.void(k, a, a_offset, a_row_stride, a_k_stride, rows, b, b_offset, b_k_stride, tile)

    def codegen(context, builder, signature, args):
        k, a, a_offset, a_row_stride, a_k_stride, rows, b, b_offset, b_k_stride, tile = args
        emit = _Emitter(context, builder, signature.args[1].dtype)
        results = emit.products(k, emit.data(signature.args[1], a), a_offset, a_row_stride,
                                a_k_stride, rows, emit.data(signature.args[6], b), b_offset, b_k_stride)
        tile_ptr = emit.data(signature.args[9], tile)
        for index, result in enumerate(results):
            emit.store_vector(result, tile_ptr, emit.const(index * emit.lanes))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def microkernel_into(typingctx, k, a, a_offset, a_row_stride, a_k_stride, b, b_offset, b_k_stride,
                     c, c_offset, c_row_stride, alpha, beta, bias, bias_offset):
    """A full MR x NR block of c = alpha * products + beta * c + bias, stored in place.

    c is read only when beta != 0: it may be uninitialized memory otherwise.
    """
    if not _is_float_array(a, b, c, bias):
        return None
    sig = types.void(k, a, a_offset, a_row_stride, a_k_stride, b, b_offset, b_k_stride, c,
                     c_offset, c_row_stride, alpha, beta, bias, bias_offset)

    def codegen(context, builder, signature, args):
        (k, a, a_offset, a_row_stride, a_k_stride, b, b_offset, b_k_stride, c, c_offset,
         c_row_stride, alpha, beta, bias, bias_offset) = args
        emit = _Emitter(context, builder, signature.args[1].dtype)
        results = emit.products(k, emit.data(signature.args[1], a), a_offset, a_row_stride,
                                a_k_stride, emit.const(MR), emit.data(signature.args[5], b), b_offset,
                                b_k_stride)
        c_ptr, bias_ptr = emit.data(signature.args[8], c), emit.data(signature.args[13], bias)
        alpha_v, beta_v = emit.splat(alpha), emit.splat(beta)
        bias_v = [emit.load_vector(bias_ptr, builder.add(bias_offset, emit.const(h * emit.lanes)))
                  for h in range(2)]
        scaled = [builder.fmul(result, alpha_v) for result in results]
        addresses = [builder.add(builder.add(c_offset, builder.mul(emit.const(r), c_row_stride)),
                                 emit.const(h * emit.lanes)) for r in range(MR) for h in range(2)]
        has_beta = builder.fcmp_unordered("!=", beta, ir.Constant(beta.type, 0.0))
        with builder.if_else(has_beta) as (with_beta, without_beta):
            with with_beta:
                for index, value in enumerate(scaled):
                    old = emit.load_vector(c_ptr, addresses[index])
                    value = builder.call(emit.fmuladd, [beta_v, old, value])
                    emit.store_vector(builder.fadd(value, bias_v[index % 2]), c_ptr, addresses[index])
            with without_beta:
                for index, value in enumerate(scaled):
                    emit.store_vector(builder.fadd(value, bias_v[index % 2]), c_ptr, addresses[index])
        return context.get_dummy_value()

    return sig, codegen

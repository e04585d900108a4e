//! The conntrack kfuncs in the embedded eBPF object: the object calls placeholder helper ids
//! (`tailwall_abi::KFUNC_*`, LLVM cannot emit a kfunc call from Rust and aya 0.14 cannot relocate one);
//! before aya parses the object, [`patch`] rewrites every such `call` instruction into a kfunc call
//! (`src_reg = BPF_PSEUDO_KFUNC_CALL`, `imm` = the function's BTF id in the running kernel's
//! `/sys/kernel/btf/vmlinux`, `off` 0 = vmlinux). [`Kfuncs::kernel`] reads those ids and the offset of
//! `nf_conn::status` from the kernel's BTF. `docs/decisions/0014-connection-tracking.md`.
use std::sync::OnceLock;

use tailwall_abi as abi;

/// `BPF_JMP | BPF_CALL`.
const OP_CALL: u8 = 0x85;
/// `BPF_LD | BPF_IMM | BPF_DW`: a 16-byte instruction.
const OP_LDDW: u8 = 0x18;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
const OP_MOV64_IMM: u8 = 0xb7;
/// `src_reg` of a kfunc call.
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
/// `SHF_EXECINSTR`.
const SHF_EXECINSTR: u64 = 0x4;
/// BTF kinds used here.
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_FUNC: u32 = 12;

/// What the datapath needs of the running kernel for `ct_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kfuncs {
    /// BTF id of `bpf_xdp_ct_lookup` (`net/netfilter/nf_conntrack_bpf.c`, Linux ≥ 5.18).
    pub xdp_ct_lookup: u32,
    /// BTF id of `bpf_skb_ct_lookup`.
    pub skb_ct_lookup: u32,
    /// BTF id of `bpf_ct_release`.
    pub ct_release: u32,
    /// Byte offset of `status` in `struct nf_conn`.
    pub status_offset: u32,
}

impl Kfuncs {
    /// The running kernel's ids, read once from `/sys/kernel/btf/vmlinux`; `Err` names what is
    /// missing (no BTF, no conntrack kfuncs: a kernel before 5.18 or without `CONFIG_NF_CONNTRACK`
    /// built in, …).
    pub fn kernel() -> Result<Kfuncs, String> {
        static K: OnceLock<Result<Kfuncs, String>> = OnceLock::new();
        K.get_or_init(|| {
            let btf = std::fs::read("/sys/kernel/btf/vmlinux")
                .map_err(|e| format!("cannot read /sys/kernel/btf/vmlinux: {e}"))?;
            Kfuncs::from_btf(&btf)
        })
        .clone()
    }

    /// The ids in a raw BTF blob (little endian, as `/sys/kernel/btf/vmlinux`).
    pub fn from_btf(btf: &[u8]) -> Result<Kfuncs, String> {
        let types = BtfTypes::parse(btf)?;
        let func = |name: &str| {
            types
                .find(BTF_KIND_FUNC, name)
                .map(|(id, _)| id)
                .ok_or_else(|| format!("the kernel has no kfunc {name} (Linux ≥ 5.18 with nf_conntrack built in, or its module loaded)"))
        };
        let (_, nf_conn) = types
            .find(BTF_KIND_STRUCT, "nf_conn")
            .ok_or("the kernel's BTF has no struct nf_conn")?;
        let status_offset = types
            .member_offset(nf_conn, "status")
            .ok_or("the kernel's struct nf_conn has no member status")?;
        Ok(Kfuncs {
            xdp_ct_lookup: func("bpf_xdp_ct_lookup")?,
            skb_ct_lookup: func("bpf_skb_ct_lookup")?,
            ct_release: func("bpf_ct_release")?,
            status_offset,
        })
    }
}

/// A copy of the ELF object `object` (8-byte aligned, as aya's parser wants) with every placeholder
/// call rewritten: into the kfunc call when `kfuncs` is given, else into `r0 = 0` (for a generation
/// that does not test `ct_state`, where the verifier prunes the calls as dead code; the kernel
/// checks every kfunc call's id even in dead code). Returns the number of calls rewritten too.
pub fn patch(object: &[u8], kfuncs: Option<&Kfuncs>) -> Result<(Aligned, usize), String> {
    let mut out = Aligned {
        words: vec![0u64; object.len().div_ceil(8)],
        len: object.len(),
    };
    out.bytes_mut().copy_from_slice(object);
    let mut rewritten = 0;
    for (off, size) in exec_sections(object)? {
        let code = &mut out.bytes_mut()[off..off + size];
        let mut i = 0;
        while i + 8 <= code.len() {
            let op = code[i];
            if op == OP_CALL && code[i + 1] >> 4 == 0 {
                let imm = u32::from_le_bytes(code[i + 4..i + 8].try_into().expect("4 bytes"));
                let id = match imm {
                    abi::KFUNC_XDP_CT_LOOKUP => kfuncs.map(|k| k.xdp_ct_lookup),
                    abi::KFUNC_SKB_CT_LOOKUP => kfuncs.map(|k| k.skb_ct_lookup),
                    abi::KFUNC_CT_RELEASE => kfuncs.map(|k| k.ct_release),
                    _ => {
                        i += 8;
                        continue;
                    }
                };
                match id {
                    Some(id) => {
                        code[i + 1] = BPF_PSEUDO_KFUNC_CALL << 4;
                        code[i + 4..i + 8].copy_from_slice(&id.to_le_bytes());
                    }
                    None => {
                        code[i] = OP_MOV64_IMM;
                        code[i + 1] = 0; // dst r0
                        code[i + 4..i + 8].copy_from_slice(&0u32.to_le_bytes());
                    }
                }
                code[i + 2..i + 4].copy_from_slice(&0u16.to_le_bytes());
                rewritten += 1;
            }
            i += if op == OP_LDDW { 16 } else { 8 };
        }
    }
    Ok((out, rewritten))
}

/// Bytes backed by `u64` words (8-byte aligned).
pub struct Aligned {
    words: Vec<u64>,
    len: usize,
}

impl Aligned {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes; u8 has no alignment needs.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, uniquely borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }
}

fn rd<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], String> {
    b.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("truncated at byte {at}"))
}
fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(rd(b, at)?))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(rd(b, at)?))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    Ok(u64::from_le_bytes(rd(b, at)?))
}

/// `(file offset, size)` of every executable section of a little-endian ELF64 object.
fn exec_sections(elf: &[u8]) -> Result<Vec<(usize, usize)>, String> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err("the ebpf object is not a little-endian ELF64 file".into());
    }
    let shoff = u64_at(elf, 0x28)? as usize;
    let shentsize = u16_at(elf, 0x3a)? as usize;
    let shnum = u16_at(elf, 0x3c)? as usize;
    let mut out = Vec::new();
    for s in 0..shnum {
        let h = shoff + s * shentsize;
        let (kind, flags) = (u32_at(elf, h + 4)?, u64_at(elf, h + 8)?);
        let (off, size) = (u64_at(elf, h + 24)? as usize, u64_at(elf, h + 32)? as usize);
        // SHT_PROGBITS with code.
        if kind == 1 && flags & SHF_EXECINSTR != 0 {
            if off.checked_add(size).is_none_or(|e| e > elf.len()) {
                return Err(format!("section {s} lies outside the ebpf object"));
            }
            out.push((off, size));
        }
    }
    Ok(out)
}

/// The type section of a BTF blob: each type's id, kind, name and where its record starts.
struct BtfTypes<'a> {
    strings: &'a [u8],
    /// `(id, kind, name offset, record offset, vlen, kind_flag)`
    types: Vec<(u32, u32, u32, usize, usize, bool)>,
    data: &'a [u8],
}

impl<'a> BtfTypes<'a> {
    fn parse(btf: &'a [u8]) -> Result<BtfTypes<'a>, String> {
        if u16_at(btf, 0)? != 0xeb9f {
            return Err("not a little-endian BTF blob".into());
        }
        let hdr_len = u32_at(btf, 4)? as usize;
        let (type_off, type_len) = (u32_at(btf, 8)? as usize, u32_at(btf, 12)? as usize);
        let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
        let data = btf
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or("BTF type section out of bounds")?;
        let strings = btf
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or("BTF string section out of bounds")?;
        let mut types = Vec::new();
        let mut at = 0;
        let mut id = 1;
        while at < data.len() {
            let name = u32_at(data, at)?;
            let info = u32_at(data, at + 4)?;
            let (vlen, kind, kflag) = (
                (info & 0xffff) as usize,
                (info >> 24) & 0x1f,
                info >> 31 == 1,
            );
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                2 | 7..=12 | 16 | 18 => 0,
                k => return Err(format!("unknown BTF kind {k}")),
            };
            types.push((id, kind, name, at, vlen, kflag));
            at += 12 + extra;
            id += 1;
        }
        Ok(BtfTypes {
            strings,
            types,
            data,
        })
    }
    fn name(&self, off: u32) -> &[u8] {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        &s[..s.iter().position(|&b| b == 0).unwrap_or(s.len())]
    }
    /// The first type of `kind` named `name`: its id and index.
    fn find(&self, kind: u32, name: &str) -> Option<(u32, usize)> {
        self.types
            .iter()
            .position(|t| t.1 == kind && self.name(t.2) == name.as_bytes())
            .map(|i| (self.types[i].0, i))
    }
    /// Byte offset of member `name` of the struct at index `i`.
    fn member_offset(&self, i: usize, name: &str) -> Option<u32> {
        let (_, _, _, at, vlen, kflag) = self.types[i];
        (0..vlen).find_map(|m| {
            let rec = at + 12 + m * 12;
            let n = u32_at(self.data, rec).ok()?;
            let off = u32_at(self.data, rec + 8).ok()?;
            let bits = if kflag { off & 0x00ff_ffff } else { off };
            (self.name(n) == name.as_bytes() && bits % 8 == 0).then_some(bits / 8)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfunc_patch_rewrites_only_the_placeholder_calls() {
        let obj = crate::object::OBJECT;
        let k = Kfuncs {
            xdp_ct_lookup: 101,
            skb_ct_lookup: 102,
            ct_release: 103,
            status_offset: 0,
        };
        let (patched, n) = patch(obj, Some(&k)).expect("the object parses");
        assert!(n >= 2, "the object calls the conntrack kfuncs ({n} calls)");
        let diff = obj
            .iter()
            .zip(patched.bytes())
            .filter(|(a, b)| a != b)
            .count();
        assert!(diff > 0 && diff <= n * 8);
        let (plain, m) = patch(obj, None).expect("the object parses");
        assert_eq!(m, n);
        assert_ne!(plain.bytes(), patched.bytes());
    }
}

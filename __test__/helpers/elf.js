// A small reader of the parts of a 64-bit little-endian ELF shared object that say where it can
// load: the header (class, type, machine), the program headers (PT_INTERP), the dynamic table
// (DT_NEEDED, DT_SONAME) and the symbol versions it requires (the verneed list that
// DT_VERNEED/DT_VERNEEDNUM point at, cross-checked against the .gnu.version_r section when the
// section headers are there). Plain JS, no readelf.

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const ET_DYN = 3;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_VERNEED = 0x6ffffffen;
const DT_VERNEEDNUM = 0x6fffffffn;
const SHT_GNU_VERNEED = 0x6ffffffe;

/** Parses `buf` (a whole .node file). Throws on anything that is not a 64-bit LE ELF. */
export function readElf(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file (bad magic)');
  const elfClass = buf[4]; // 1 = ELFCLASS32, 2 = ELFCLASS64
  const dataEncoding = buf[5]; // 1 = little endian
  if (elfClass !== 2) throw new Error(`not ELFCLASS64 (EI_CLASS ${elfClass})`);
  if (dataEncoding !== 1) throw new Error(`not little-endian (EI_DATA ${dataEncoding})`);
  const u16 = (o) => buf.readUInt16LE(o);
  const u32 = (o) => buf.readUInt32LE(o);
  const u64 = (o) => buf.readBigUInt64LE(o);
  const num = (o) => Number(u64(o));

  const header = {
    elfClass,
    osabi: buf[7],
    type: u16(16),
    machine: u16(18),
    phoff: num(32),
    shoff: num(40),
    phentsize: u16(54),
    phnum: u16(56),
    shentsize: u16(58),
    shnum: u16(60),
    shstrndx: u16(62),
  };

  const segments = [];
  for (let i = 0; i < header.phnum; i++) {
    const o = header.phoff + i * header.phentsize;
    segments.push({ type: u32(o), offset: num(o + 8), vaddr: num(o + 16), filesz: num(o + 32), memsz: num(o + 40) });
  }
  const vaddrToOffset = (addr) => {
    const seg = segments.find((s) => s.type === PT_LOAD && addr >= s.vaddr && addr < s.vaddr + s.filesz);
    if (!seg) throw new Error(`address 0x${addr.toString(16)} is in no PT_LOAD segment`);
    return seg.offset + (addr - seg.vaddr);
  };
  const cstr = (o) => {
    const end = buf.indexOf(0, o);
    if (end < 0) throw new Error(`unterminated string at ${o}`);
    return buf.toString('latin1', o, end);
  };

  const interpSeg = segments.find((s) => s.type === PT_INTERP);
  const interpreter = interpSeg ? cstr(interpSeg.offset) : null;

  const dynSeg = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynSeg) throw new Error('no PT_DYNAMIC segment: not a dynamically linked object');
  const dyn = [];
  for (let o = dynSeg.offset; o + 16 <= dynSeg.offset + dynSeg.filesz; o += 16) {
    const tag = buf.readBigInt64LE(o);
    if (tag === DT_NULL) break;
    dyn.push({ tag, val: u64(o + 8) });
  }
  const one = (tag) => dyn.find((d) => d.tag === tag)?.val;
  const strtabAddr = one(DT_STRTAB);
  if (strtabAddr === undefined) throw new Error('no DT_STRTAB');
  const strtab = vaddrToOffset(Number(strtabAddr));
  const strsz = Number(one(DT_STRSZ) ?? 0n);
  const dynstr = (index) => {
    if (strsz && index >= strsz) throw new Error(`string index ${index} past DT_STRSZ ${strsz}`);
    return cstr(strtab + index);
  };

  const needed = dyn.filter((d) => d.tag === DT_NEEDED).map((d) => dynstr(Number(d.val)));
  const sonameIndex = one(DT_SONAME);
  const soname = sonameIndex === undefined ? null : dynstr(Number(sonameIndex));

  // Elf64_Verneed { u16 vn_version, u16 vn_cnt, u32 vn_file, u32 vn_aux, u32 vn_next }
  // Elf64_Vernaux { u32 vna_hash, u16 vna_flags, u16 vna_other, u32 vna_name, u32 vna_next }
  const versionsNeeded = [];
  const verneedAddr = one(DT_VERNEED);
  let verneedOffset = null;
  if (verneedAddr !== undefined) {
    verneedOffset = vaddrToOffset(Number(verneedAddr));
    const count = Number(one(DT_VERNEEDNUM) ?? 0n);
    let o = verneedOffset;
    for (let i = 0; i < count; i++) {
      if (u16(o) !== 1) throw new Error(`unknown vn_version ${u16(o)}`);
      const file = dynstr(u32(o + 4));
      const versions = [];
      let a = o + u32(o + 8);
      for (let j = 0; j < u16(o + 2); j++) {
        versions.push(dynstr(u32(a + 8)));
        const next = u32(a + 12);
        if (next === 0) break;
        a += next;
      }
      versionsNeeded.push({ file, versions });
      const next = u32(o + 12);
      if (next === 0) break;
      o += next;
    }
  }

  // Section headers (kept by `strip`): the .gnu.version_r section must be the table the dynamic
  // section points at, so neither view can hide a requirement from the other.
  let verneedSection = null;
  if (header.shoff && header.shnum && header.shstrndx < header.shnum) {
    const sh = (i) => {
      const o = header.shoff + i * header.shentsize;
      return { name: u32(o), type: u32(o + 4), offset: num(o + 24), size: num(o + 32) };
    };
    const shstr = sh(header.shstrndx);
    for (let i = 0; i < header.shnum; i++) {
      const s = sh(i);
      if (s.type === SHT_GNU_VERNEED) verneedSection = { name: cstr(shstr.offset + s.name), offset: s.offset, size: s.size };
    }
  }

  return { header, interpreter, needed, soname, versionsNeeded, verneedOffset, verneedSection };
}

/** The highest `GLIBC_x.y[.z]` among the required versions, as [x, y, z], or null when none. */
export function highestGlibc(versionsNeeded) {
  let best = null;
  for (const { versions } of versionsNeeded) {
    for (const v of versions) {
      const m = /^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v);
      if (!m) continue;
      const parts = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
      if (!best || compareVersions(parts, best) > 0) best = parts;
    }
  }
  return best;
}

export function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

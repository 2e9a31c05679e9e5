package findings

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"testing"
)

// goModInfo is the module information of a build of
// testdata/govulncheck/app with yaml.v2 replaced by a newer version and a
// module taken from a directory, as the linker records it.
const goModInfo = "path\texample.com/vulnapp\n" +
	"mod\texample.com/vulnapp\tv1.2.3\t\n" +
	"dep\texample.com/local\tv0.0.0\t\n" +
	"=>\t./local\t\t\n" +
	"dep\tgolang.org/x/text\tv0.3.5\th1:+Ys1yq0e6Jh2Wk1+4EuEdNXkM7mPq8j0bwKHO5uqJdM=\n" +
	"dep\tgopkg.in/yaml.v2\tv2.2.2\t\n" +
	"=>\tgopkg.in/yaml.v2\tv2.2.7\th1:VUgggvou5XRW9mHwD/yXxIYSMtY0zoKQf/v226p2nyo=\n" +
	"build\t-buildmode=exe\n" +
	"build\tGOOS=linux\n" +
	"build\tGOARCH=amd64\n"

// goBuildInfoELF returns the smallest ELF executable that debug/buildinfo
// reads: a header, one writable PT_LOAD segment and in it the build
// information blob as the Go 1.18+ linker writes it (magic, pointer size,
// inline strings flag, then the Go version and the module information as
// varint-prefixed strings, the latter between 16-byte sentinels).
func goBuildInfoELF(goVersion, modInfo string) []byte {
	blob := make([]byte, 32)
	copy(blob, "\xff Go buildinf:")
	blob[14], blob[15] = 8, 2
	const sentinel = "0123456789abcdef"
	for _, s := range []string{goVersion, sentinel + modInfo + sentinel} {
		blob = binary.AppendUvarint(blob, uint64(len(s)))
		blob = append(blob, s...)
	}
	const (
		ehsize, phsize = 64, 56
		vaddr          = 0x10000
	)
	off := uint64(ehsize + phsize)
	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Entry: vaddr, Phoff: ehsize, Ehsize: ehsize, Phentsize: phsize, Phnum: 1, Shentsize: 64,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS], hdr.Ident[elf.EI_DATA], hdr.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	prog := elf.Prog64{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_W), Off: off, Vaddr: vaddr, Paddr: vaddr,
		Filesz: uint64(len(blob)), Memsz: uint64(len(blob)), Align: 16,
	}
	binary.Write(&b, binary.LittleEndian, hdr)
	binary.Write(&b, binary.LittleEndian, prog)
	b.Write(blob)
	return b.Bytes()
}

// FuzzParseGoBinary feeds arbitrary executables to the Go binary reader,
// from a minimal ELF with the build information of a vulnerable program:
// it must not panic, and its findings and errors must be what every
// importer gives (complete, merged, errors naming the input).
func FuzzParseGoBinary(f *testing.F) {
	db := testDB(f)
	parse := func(r io.Reader, name string) ([]Finding, []error) {
		data, err := io.ReadAll(r)
		if err != nil {
			f.Fatal(err)
		}
		return ParseGoBinary(bytes.NewReader(data), name, db)
	}
	fuzzParser(f, parse,
		string(goBuildInfoELF("go1.21.0", goModInfo)),
		string(goBuildInfoELF("devel go1.27-4e7a3b2c", "path\tcmd/x\nmod\tcmd/x\t(devel)\t\n")),
		string(goBuildInfoELF("go1.26.8 X:boringcrypto", "")),
	)
}

// TestGoBuildInfoELF checks the seed of FuzzParseGoBinary: the minimal
// ELF must read as the program it describes, with findings for its
// vulnerable modules, or the fuzzer would start from nothing.
func TestGoBuildInfoELF(t *testing.T) {
	fs, errs := ParseGoBinary(bytes.NewReader(goBuildInfoELF("go1.21.0", goModInfo)), "seed", testDB(t))
	if len(errs) != 1 {
		t.Errorf("errors %v, want the one of the directory replacement", errs)
	}
	mods := map[string]bool{}
	for _, x := range fs {
		mods[x.Package.Name+"@"+x.Package.Version] = true
	}
	if !mods["golang.org/x/text@v0.3.5"] {
		t.Errorf("no finding for golang.org/x/text@v0.3.5 in %v", mods)
	}
}

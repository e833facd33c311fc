package gitrepo

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"io"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
)

// Writing packs, kept apart from reading them (pack.go): the writer's pushes encode
// their new objects here, and every pack kept on disk, written or received, gets its
// index here.

// encodePack writes a pack of exactly the given objects, whole and stored without
// compression: a pack of a few hundred small new objects is sent once, and per-object
// deflate (its Huffman tables) cost ~40 µs an object, more than the transfer saves on
// any link the fleet repository sits behind.
func encodePack(objs *objectSet) ([]byte, error) {
	pp, err := encodePackIndexed(objs)
	if err != nil {
		return nil, err
	}
	return pp.raw, nil
}

// packed is the set as a pack, encoded on first use.
func (s *objectSet) packed() (*parsedPack, error) {
	if s.pack == nil {
		pp, err := encodePackIndexed(s)
		if err != nil {
			return nil, err
		}
		s.pack = pp
	}
	return s.pack, nil
}

// encodePackIndexed also records what an index of the pack needs (offsets, CRCs).
func encodePackIndexed(objs *objectSet) (*parsedPack, error) {
	pp := &parsedPack{objects: make([]*packObject, 0, len(objs.order))}
	contents := make([][]byte, len(objs.order))
	// The pack's size is known before it is written: a buffer grown by doubling
	// copied and cleared it over and over (most of this function's time in a
	// profile of 100 clients creating stores).
	size := 12 + sha1.Size
	for i, oh := range objs.order {
		content, err := objectContent(objs.byHash[oh])
		if err != nil {
			return nil, err
		}
		contents[i] = content
		size += packEntryHeaderMax + storedZlibSize(len(content))
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(objs.order)))
	buf.Write(hdr[:])
	for i, oh := range objs.order {
		o, content := objs.byHash[oh], contents[i]
		po := &packObject{typ: o.Type(), hash: oh, offset: int64(buf.Len())}
		pp.objects = append(pp.objects, po)
		size := len(content)
		b := byte(o.Type())<<4 | byte(size&0x0f)
		size >>= 4
		for size > 0 {
			buf.WriteByte(b | 0x80)
			b = byte(size & 0x7f)
			size >>= 7
		}
		buf.WriteByte(b)
		writeStoredZlib(buf, content)
		po.crc = crc32.ChecksumIEEE(buf.Bytes()[po.offset:])
	}
	sum := sha1.Sum(buf.Bytes())
	buf.Write(sum[:])
	pp.raw, pp.sum = buf.Bytes(), plumbing.Hash(sum)
	return pp, nil
}

// packEntryHeaderMax is the longest type-and-size header of a pack entry: 4 bits of
// size in the first byte, 7 in each next, for a size of up to 64 bits.
const packEntryHeaderMax = 10

// storedZlibSize is how long writeStoredZlib's stream for n bytes is: the zlib
// header, 5 bytes per stored block of up to 64 KiB (at least one), the Adler-32.
func storedZlibSize(n int) int {
	blocks := max(1, (n+0xfffe)/0xffff)
	return 2 + 5*blocks + n + 4
}

func objectContent(o plumbing.EncodedObject) ([]byte, error) {
	if m, ok := o.(*memObject); ok {
		return m.content, nil
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// writeStoredZlib writes content as a zlib stream of stored (uncompressed) blocks.
func writeStoredZlib(buf *bytes.Buffer, content []byte) {
	sum := adler32.Checksum(content)
	buf.Write([]byte{0x78, 0x01})
	for first := true; first || len(content) > 0; first = false {
		n := min(len(content), 0xffff)
		var l [5]byte
		if n == len(content) {
			l[0] = 1 // the final block
		}
		binary.LittleEndian.PutUint16(l[1:], uint16(n))
		binary.LittleEndian.PutUint16(l[3:], ^uint16(n))
		buf.Write(l[:])
		buf.Write(content[:n])
		content = content[n:]
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], sum)
	buf.Write(a[:])
}

// idxV2 renders the pack's version-2 index, so an on-disk clone can use the pack as
// received.
func (pp *parsedPack) idxV2() []byte {
	objs := append([]*packObject(nil), pp.objects...)
	sort.Slice(objs, func(i, j int) bool { return bytes.Compare(objs[i].hash[:], objs[j].hash[:]) < 0 })
	var b bytes.Buffer
	b.Write([]byte{0xff, 't', 'O', 'c', 0, 0, 0, 2})
	var fan [256]uint32
	for _, o := range objs {
		fan[o.hash[0]]++
	}
	var acc uint32
	for i := range fan {
		acc += fan[i]
		binary.Write(&b, binary.BigEndian, acc)
	}
	for _, o := range objs {
		b.Write(o.hash[:])
	}
	for _, o := range objs {
		binary.Write(&b, binary.BigEndian, o.crc)
	}
	var large []uint64
	for _, o := range objs {
		if o.offset < 1<<31 {
			binary.Write(&b, binary.BigEndian, uint32(o.offset))
		} else {
			binary.Write(&b, binary.BigEndian, uint32(len(large))|1<<31)
			large = append(large, uint64(o.offset))
		}
	}
	for _, l := range large {
		binary.Write(&b, binary.BigEndian, l)
	}
	b.Write(pp.sum[:])
	s := sha1.Sum(b.Bytes())
	b.Write(s[:])
	return b.Bytes()
}

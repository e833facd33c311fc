package gitrepo

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
)

// go-git's pack parser inflates every object twice and hashes with a collision-detecting
// SHA-1; on a 10,000-store fleet that made a fresh clone cost ~2 s of CPU. This reader
// inflates each object once, resolves deltas from the contents it already holds, and
// hashes with crypto/sha1 (the transport's own checksum and the remote's fsck guard
// integrity; nothing here trusts a hash it did not compute).

// packObject is one object read from a pack.
type packObject struct {
	typ      plumbing.ObjectType
	hash     plumbing.Hash
	content  []byte
	offset   int64
	crc      uint32
	baseOff  int64         // OFS_DELTA base
	baseHash plumbing.Hash // REF_DELTA base
	delta    []byte
}

// parsedPack is a whole pack read into memory.
type parsedPack struct {
	raw     []byte // the pack as received (for writing to disk)
	sum     plumbing.Hash
	objects []*packObject
}

type countingReader struct {
	r   *bufio.Reader
	n   int64
	buf *bytes.Buffer
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.buf.Write(p[:n])
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
		c.buf.WriteByte(b)
	}
	return b, err
}

// readPack reads a pack stream; external returns the content of a delta base that is
// not in the pack (thin packs).
func readPack(r io.Reader, external func(plumbing.Hash) (plumbing.ObjectType, []byte, error)) (*parsedPack, error) {
	raw := &bytes.Buffer{}
	pr := &packReader{cr: &countingReader{r: bufio.NewReaderSize(r, 64<<10), buf: raw}}
	count, err := pr.header()
	if err != nil {
		return nil, err
	}
	pp := &parsedPack{objects: make([]*packObject, 0, count)}
	for i := uint32(0); i < count; i++ {
		o, err := pr.object()
		if err != nil {
			return nil, err
		}
		pp.objects = append(pp.objects, o)
	}
	if err := pr.trailer(pp, raw); err != nil {
		return nil, err
	}
	if err := resolveDeltas(pp, external); err != nil {
		return nil, err
	}
	return pp, nil
}

// packReader reads a pack's entries in one pass. Its zlib reader is reset for each
// entry instead of allocated anew: a fleet pack is tens of thousands of small objects,
// and each new reader allocates its own window.
type packReader struct {
	cr *countingReader
	zr io.ReadCloser
}

// header checks the signature and version before the object count in it sizes any
// allocation: a stream that is not a pack must fail, not allocate a garbage count.
func (pr *packReader) header() (uint32, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(pr.cr, hdr[:]); err != nil {
		return 0, fmt.Errorf("gitrepo: pack header: %w", err)
	}
	if string(hdr[:4]) != "PACK" {
		return 0, errors.New("gitrepo: not a pack")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return 0, fmt.Errorf("gitrepo: pack version %d", v)
	}
	return binary.BigEndian.Uint32(hdr[8:12]), nil
}

// object reads one entry. Whole objects are hashed as they are read so REF_DELTAs can
// find them by hash; deltas are kept raw, since their base may not have been read yet.
func (pr *packReader) object() (*packObject, error) {
	o := &packObject{offset: pr.cr.n}
	typ, size, err := pr.entryHeader()
	if err != nil {
		return nil, err
	}
	if err := pr.deltaBase(o, typ); err != nil {
		return nil, err
	}
	data, err := pr.inflate(o.offset, size)
	if err != nil {
		return nil, err
	}
	if typ == plumbing.OFSDeltaObject || typ == plumbing.REFDeltaObject {
		o.delta = data
	} else {
		o.typ, o.content = typ, data
		o.hash = objectHash(typ, data)
	}
	return o, nil
}

// entryHeader reads an entry's type and inflated size; the size lets inflate allocate
// the content once, at its final length.
func (pr *packReader) entryHeader() (plumbing.ObjectType, int64, error) {
	b, err := pr.cr.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	typ := plumbing.ObjectType((b >> 4) & 7)
	size := int64(b & 0x0f)
	shift := uint(4)
	for b&0x80 != 0 {
		if b, err = pr.cr.ReadByte(); err != nil {
			return 0, 0, err
		}
		size |= int64(b&0x7f) << shift
		shift += 7
	}
	return typ, size, nil
}

// deltaBase reads what names a delta's base, which sits between the entry header and
// the compressed data; it also refuses entry types git never writes, before their
// data is inflated.
func (pr *packReader) deltaBase(o *packObject, typ plumbing.ObjectType) error {
	switch typ {
	case plumbing.OFSDeltaObject:
		b, err := pr.cr.ReadByte()
		if err != nil {
			return err
		}
		ofs := int64(b & 0x7f)
		for b&0x80 != 0 {
			if b, err = pr.cr.ReadByte(); err != nil {
				return err
			}
			ofs = ((ofs + 1) << 7) | int64(b&0x7f)
		}
		o.baseOff = o.offset - ofs
	case plumbing.REFDeltaObject:
		if _, err := io.ReadFull(pr.cr, o.baseHash[:]); err != nil {
			return err
		}
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
	default:
		return fmt.Errorf("gitrepo: pack object type %d", typ)
	}
	return nil
}

// inflate reads one entry's zlib stream to its very end: entries are not delimited
// other than by their streams, so stopping at the declared size would start the next
// entry inside this one's checksum.
func (pr *packReader) inflate(offset, size int64) ([]byte, error) {
	var err error
	if pr.zr == nil {
		pr.zr, err = zlib.NewReader(pr.cr)
	} else {
		err = pr.zr.(zlib.Resetter).Reset(pr.cr, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("gitrepo: pack object at %d: %w", offset, err)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(pr.zr, data); err != nil {
		return nil, fmt.Errorf("gitrepo: pack object at %d: %w", offset, err)
	}
	var one [1]byte
	if n, err := pr.zr.Read(one[:]); n != 0 || (err != nil && err != io.EOF) {
		return nil, fmt.Errorf("gitrepo: pack object at %d: size mismatch", offset)
	}
	return data, nil
}

// trailer checks the pack's checksum and records each entry's CRC: an on-disk clone
// keeps the pack as received, and the index written for it must carry the CRCs git
// checks when it copies entries out of the pack on a repack.
func (pr *packReader) trailer(pp *parsedPack, raw *bytes.Buffer) error {
	end := pr.cr.n
	var sum [20]byte
	if _, err := io.ReadFull(pr.cr, sum[:]); err != nil {
		return fmt.Errorf("gitrepo: pack trailer: %w", err)
	}
	pp.raw = raw.Bytes()
	if sha1.Sum(pp.raw[:end]) != sum {
		return errors.New("gitrepo: pack checksum mismatch")
	}
	pp.sum = plumbing.Hash(sum)
	for i, o := range pp.objects {
		next := end
		if i+1 < len(pp.objects) {
			next = pp.objects[i+1].offset
		}
		o.crc = crc32.ChecksumIEEE(pp.raw[o.offset:next])
	}
	return nil
}

// errBaseLater marks a REF_DELTA whose base is neither resolved yet nor held outside
// the pack; resolveDeltas tries it again once other deltas have resolved.
var errBaseLater = errors.New("base not seen yet")

// deltaResolver turns deltas into whole objects from the contents already in memory,
// so no object is inflated or read twice.
type deltaResolver struct {
	byOffset map[int64]*packObject
	byHash   map[plumbing.Hash]*packObject // whole objects, including resolved deltas
	external func(plumbing.Hash) (plumbing.ObjectType, []byte, error)
}

// resolveDeltas resolves every delta of the pack. Bases precede OFS deltas, but a
// REF_DELTA's base may come later in the pack, be itself a delta, or be outside the
// pack (thin packs): the passes repeat until nothing moves.
func resolveDeltas(pp *parsedPack, external func(plumbing.Hash) (plumbing.ObjectType, []byte, error)) error {
	d := &deltaResolver{
		byOffset: make(map[int64]*packObject, len(pp.objects)),
		byHash:   make(map[plumbing.Hash]*packObject, len(pp.objects)),
		external: external,
	}
	for _, o := range pp.objects {
		d.byOffset[o.offset] = o
		if o.delta == nil {
			d.byHash[o.hash] = o
		}
	}
	for {
		later, progressed := 0, false
		for _, o := range pp.objects {
			if o.delta == nil {
				continue
			}
			switch err := d.resolve(o, 0); {
			case err == nil:
				progressed = true
			case errors.Is(err, errBaseLater):
				later++
			default:
				return err
			}
		}
		if later == 0 {
			return nil
		}
		if !progressed {
			return fmt.Errorf("gitrepo: pack has %d deltas whose base is missing", later)
		}
	}
}

// resolve makes o a whole object, first resolving the chain of OFS bases under it;
// depth bounds that recursion against a crafted pack whose chain never ends.
func (d *deltaResolver) resolve(o *packObject, depth int) error {
	if o.delta == nil {
		return nil
	}
	if depth > 10000 {
		return errors.New("gitrepo: pack delta chain too deep")
	}
	btyp, base, err := d.base(o, depth)
	if err != nil {
		return err
	}
	content, err := applyDelta(base, o.delta)
	if err != nil {
		return fmt.Errorf("gitrepo: pack object at %d: %w", o.offset, err)
	}
	o.typ, o.content, o.delta = btyp, content, nil
	o.hash = objectHash(btyp, content)
	d.byHash[o.hash] = o
	return nil
}

// base finds a delta's base: by hash in the pack or outside it (REF_DELTA), or by
// offset in the pack (OFS_DELTA).
func (d *deltaResolver) base(o *packObject, depth int) (plumbing.ObjectType, []byte, error) {
	if !o.baseHash.IsZero() {
		if bo, ok := d.byHash[o.baseHash]; ok {
			return bo.typ, bo.content, nil
		}
		if t, c, err := d.external(o.baseHash); err == nil {
			return t, c, nil
		}
		return 0, nil, errBaseLater
	}
	bo, ok := d.byOffset[o.baseOff]
	if !ok {
		return 0, nil, fmt.Errorf("gitrepo: pack delta base at %d missing", o.baseOff)
	}
	if err := d.resolve(bo, depth+1); err != nil {
		return 0, nil, err
	}
	return bo.typ, bo.content, nil
}

func objectHash(t plumbing.ObjectType, content []byte) plumbing.Hash {
	h := sha1.New()
	h.Write([]byte(t.String()))
	h.Write([]byte(" "))
	h.Write([]byte(strconv.Itoa(len(content))))
	h.Write([]byte{0})
	h.Write(content)
	var out plumbing.Hash
	copy(out[:], h.Sum(nil))
	return out
}

func deltaVarint(d []byte) (uint64, []byte, error) {
	var v uint64
	var shift uint
	for i, b := range d {
		v |= uint64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			return v, d[i+1:], nil
		}
	}
	return 0, nil, errors.New("bad delta header")
}

func applyDelta(base, delta []byte) ([]byte, error) {
	srcSize, d, err := deltaVarint(delta)
	if err != nil {
		return nil, err
	}
	if srcSize != uint64(len(base)) {
		return nil, errors.New("delta base size mismatch")
	}
	dstSize, d, err := deltaVarint(d)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, dstSize)
	for len(d) > 0 {
		op := d[0]
		d = d[1:]
		switch {
		case op&0x80 != 0:
			var off, n uint64
			for i := uint(0); i < 4; i++ {
				if op&(1<<i) != 0 {
					if len(d) == 0 {
						return nil, errors.New("truncated delta")
					}
					off |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			for i := uint(0); i < 3; i++ {
				if op&(0x10<<i) != 0 {
					if len(d) == 0 {
						return nil, errors.New("truncated delta")
					}
					n |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) {
				return nil, errors.New("delta copy out of range")
			}
			out = append(out, base[off:off+n]...)
		case op != 0:
			if int(op) > len(d) {
				return nil, errors.New("truncated delta insert")
			}
			out = append(out, d[:op]...)
			d = d[op:]
		default:
			return nil, errors.New("delta opcode 0")
		}
	}
	if uint64(len(out)) != dstSize {
		return nil, errors.New("delta result size mismatch")
	}
	return out, nil
}

// memObject is a stored object whose hash is already known, so go-git's memory storage
// neither copies nor re-hashes it.
type memObject struct {
	typ     plumbing.ObjectType
	hash    plumbing.Hash
	content []byte
}

func (o *memObject) Hash() plumbing.Hash           { return o.hash }
func (o *memObject) Type() plumbing.ObjectType     { return o.typ }
func (o *memObject) SetType(t plumbing.ObjectType) { o.typ = t }
func (o *memObject) Size() int64                   { return int64(len(o.content)) }
func (o *memObject) SetSize(int64)                 {}
func (o *memObject) Reader() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(o.content)), nil
}
func (o *memObject) Writer() (io.WriteCloser, error) {
	return nil, errors.New("gitrepo: object is read-only")
}

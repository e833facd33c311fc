package api

// MergePatch applies an RFC 7396 JSON merge patch to target and returns the result.
// Both are decoded JSON values (map[string]any for objects). A null in the patch
// removes the member; an object merges recursively; anything else replaces.
func MergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	} else {
		// Copy so the caller's document is never changed behind its back.
		c := make(map[string]any, len(t))
		for k, v := range t {
			c[k] = v
		}
		t = c
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = MergePatch(t[k], v)
	}
	return t
}

package keyring

import "fmt"

// LoadFile reads one key file (<key_id>.key), with the same checks as
// Load: e.g. an offline root key handed to a signing ceremony.
func LoadFile(path string) (*Key, error) {
	k, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	return k, nil
}

// Private returns the key's private half (for signers other than
// snapshot.Signer, e.g. TUF metadata).
func (k *Key) Private() []byte { return k.private }

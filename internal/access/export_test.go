package access

// QuotaCheckRoom is quotaCheckRoom, for the tests of package access_test.
func QuotaCheckRoom() int { return quotaCheckRoom }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
)

func entitlementCmd() *cobra.Command {
	create := leaf("create", "Grant a tenant an entitlement to a product", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		policy := str(cmd, "policy")
		if !json.Valid([]byte(policy)) {
			return usageError(errors.New("--policy must be a JSON object, e.g. '{\"max_seats\":10}'"))
		}
		in := controlplane.EntitlementInput{ProductID: str(cmd, "product"), Policy: json.RawMessage(policy)}
		var err error
		if in.StartsAt, err = timeFlag(cmd, "starts-at"); err != nil {
			return err
		}
		if in.EndsAt, err = timeFlag(cmd, "ends-at"); err != nil {
			return err
		}
		return printed(cmd, func(e *catalog.Entitlement) string { return e.EntitlementID })(svc.CreateEntitlement(ctx, str(cmd, "tenant"), in))
	})
	create.Flags().String("tenant", "", "tenant id")
	create.Flags().String("product", "", "product id")
	create.Flags().String("policy", `{"max_seats":1}`, "policy_json (docs/licensing.md)")
	create.Flags().String("starts-at", "", "RFC 3339 time (default now)")
	create.Flags().String("ends-at", "", "RFC 3339 time (default: never ends)")
	list := leaf("list", "List a tenant's entitlements", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		ents := func(ctx context.Context, pg store.Page) ([]*catalog.Entitlement, string, error) {
			return svc.Entitlements(ctx, str(cmd, "tenant"), pg)
		}
		return listed(cmd, "ENTITLEMENT\tPRODUCT\tSTARTS\tENDS\tPOLICY", func(e *catalog.Entitlement) []any {
			return []any{e.EntitlementID, e.ProductID, e.StartsAt.Format(time.RFC3339), endsAt(e), string(e.Policy)}
		})(store.All(ctx, ents))
	})
	list.Flags().String("tenant", "", "tenant id")
	show := leaf("show ENTITLEMENT_ID", "Show an entitlement and its seats split (control plane, mirrors)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		e, err := svc.Entitlement(ctx, args[0])
		if err != nil {
			return err
		}
		return output(cmd, e, func(w io.Writer) { printEntitlement(w, e) })
	})
	update := leaf("update ENTITLEMENT_ID", "Change an entitlement's policy (whole JSON) or dates", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		var in controlplane.EntitlementPatch
		var err error
		if in.Policy, err = jsonFlag(cmd, "policy"); err != nil {
			return err
		}
		if in.StartsAt, err = timeFlag(cmd, "starts-at"); err != nil {
			return err
		}
		if in.EndsAt, err = timeFlag(cmd, "ends-at"); err != nil {
			return err
		}
		if in.Policy == nil && in.StartsAt == nil && in.EndsAt == nil {
			return usageError(errors.New("give --policy, --starts-at and/or --ends-at (to give a mirror seats: `entitlement delegate`)"))
		}
		return printed(cmd, func(e *catalog.Entitlement) string { return e.EntitlementID + "\t" + string(e.Policy) })(svc.UpdateEntitlement(ctx, args[0], in))
	})
	update.Flags().String("policy", "", `the whole policy_json (docs/licensing.md), e.g. '{"max_seats":50,"mirror_seats":{"mir_…":50}}'`)
	update.Flags().String("starts-at", "", "RFC 3339 time")
	update.Flags().String("ends-at", "", "RFC 3339 time")
	delegate := leaf("delegate ENTITLEMENT_ID", "Give a mirror seats it may lease offline (policy mirror_seats; taken out of the control plane's own seats)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		mirrorID := str(cmd, "mirror")
		if mirrorID == "" || !cmd.Flags().Changed("seats") {
			return usageError(errors.New("--mirror MIRROR_ID and --seats N are required (N=0 takes the mirror's seats back)"))
		}
		seats, _ := cmd.Flags().GetInt("seats")
		if seats < 0 {
			return usageError(fmt.Errorf("--seats must be 0 or more, not %d", seats))
		}
		e, err := svc.Entitlement(ctx, args[0])
		if err != nil {
			return err
		}
		m, err := svc.Mirror(ctx, mirrorID)
		if err != nil {
			return fmt.Errorf("--mirror: %w", err)
		}
		if m.TenantID != e.TenantID {
			return fmt.Errorf("mirror %s belongs to tenant %s, entitlement %s to tenant %s", m.MirrorID, m.TenantID, e.EntitlementID, e.TenantID)
		}
		policy, err := withMirrorSeats(e.Policy, mirrorID, seats)
		if err != nil {
			return err
		}
		e, err = svc.UpdateEntitlement(ctx, e.EntitlementID, controlplane.EntitlementPatch{Policy: policy})
		if err != nil {
			return err
		}
		return output(cmd, e, func(w io.Writer) {
			printEntitlement(w, e)
			fmt.Fprintf(w, "mirror %s takes effect with the next snapshot: `controlplane snapshot build --tenant %s` (or a bundle export for an air-gapped site)\n", mirrorID, e.TenantID)
		})
	})
	delegate.Flags().String("mirror", "", "mirror id (mir_…, printed by 'mirror create' and 'mirror list')")
	delegate.Flags().Int("seats", 0, "seats the mirror may hand out offline; 0 takes them back")
	return group("entitlement", "Licences: entitlements (docs/licensing.md)", create, list, show, update, delegate)
}

// seatCmd lists an entitlement's seat assignments.
func seatCmd() *cobra.Command {
	list := leaf("list", "List an entitlement's seat assignments", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		seats := func(ctx context.Context, pg store.Page) ([]*catalog.SeatAssignment, string, error) {
			return svc.Seats(ctx, str(cmd, "entitlement"), pg)
		}
		return listed(cmd, "SEAT\tSUBJECT TYPE\tSUBJECT\tASSIGNED\tREVOKED", func(a *catalog.SeatAssignment) []any {
			revoked := "-"
			if a.RevokedAt != nil {
				revoked = a.RevokedAt.Format(time.RFC3339)
			}
			return []any{a.SeatAssignmentID, a.SubjectType, a.SubjectID, a.AssignedAt.Format(time.RFC3339), revoked}
		})(store.All(ctx, seats))
	})
	list.Flags().String("entitlement", "", "entitlement id")
	assign := leaf("assign", "Assign a seat to a subject (needed with seat_assignment_mode explicit) and print its id", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		in := controlplane.Subject{SubjectType: str(cmd, "subject-type"), SubjectID: str(cmd, "subject-id")}
		return printed(cmd, func(a *catalog.SeatAssignment) string { return a.SeatAssignmentID })(svc.AssignSeat(ctx, str(cmd, "entitlement"), in))
	})
	assign.Flags().String("entitlement", "", "entitlement id")
	assign.Flags().String("subject-type", "machine", "user, machine or device")
	assign.Flags().String("subject-id", "", "who gets the seat")
	revoke := leaf("revoke SEAT_ID", "Revoke a seat assignment", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return printed(cmd, func(a *catalog.SeatAssignment) string { return a.SeatAssignmentID + "\trevoked" })(svc.RevokeSeat(ctx, str(cmd, "entitlement"), args[0]))
	})
	revoke.Flags().String("entitlement", "", "entitlement id")
	return group("seat", "Seat assignments of an entitlement (docs/licensing.md)", assign, list, revoke)
}

// withMirrorSeats sets policy_json's mirror_seats[mirrorID] to seats (0
// removes it), keeping every other member as it was.
func withMirrorSeats(policy json.RawMessage, mirrorID string, seats int) (json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(policy, &members); err != nil || members == nil {
		return nil, fmt.Errorf("the entitlement's policy_json is not a JSON object: %v", err)
	}
	ms := map[string]int{}
	if raw, ok := members["mirror_seats"]; ok {
		if err := json.Unmarshal(raw, &ms); err != nil {
			return nil, fmt.Errorf("the entitlement's mirror_seats: %w", err)
		}
		if ms == nil {
			ms = map[string]int{}
		}
	}
	if seats == 0 {
		delete(ms, mirrorID)
	} else {
		ms[mirrorID] = seats
	}
	if len(ms) == 0 {
		delete(members, "mirror_seats")
	} else {
		b, err := json.Marshal(ms)
		if err != nil {
			return nil, err
		}
		members["mirror_seats"] = b
	}
	return json.Marshal(members)
}

func endsAt(e *catalog.Entitlement) string {
	if e.EndsAt == nil {
		return "never"
	}
	return e.EndsAt.Format(time.RFC3339)
}

func printEntitlement(w io.Writer, e *catalog.Entitlement) {
	fmt.Fprintf(w, "entitlement: %s\ntenant:      %s\nproduct:     %s\nstarts:      %s\nends:        %s\npolicy:      %s\n",
		e.EntitlementID, e.TenantID, e.ProductID, e.StartsAt.Format(time.RFC3339), endsAt(e), e.Policy)
	if p, err := catalog.ParseEntitlementPolicy(e.Policy); err == nil {
		fmt.Fprintf(w, "seats:       %d in all, %d leased online by the control plane", p.MaxSeats, p.OnlineSeats())
		ids := make([]string, 0, len(p.MirrorSeats))
		for id := range p.MirrorSeats {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(w, ", %d by mirror %s", p.MirrorSeats[id], id)
		}
		fmt.Fprintln(w)
	}
}

// timeFlag reads an optional RFC 3339 time flag.
func timeFlag(cmd *cobra.Command, name string) (*time.Time, error) {
	v := str(cmd, name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageError(fmt.Errorf("--%s must be an RFC 3339 time: %w", name, err))
	}
	return &t, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/webhook"
)

func webhookCmd() *cobra.Command {
	create := leaf("create", "Subscribe an HTTPS endpoint to event types and print its secret (shown once)", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		types, _ := cmd.Flags().GetStringSlice("events")
		in := controlplane.WebhookInput{URL: str(cmd, "url"), EventTypes: types, TenantID: str(cmd, "tenant")}
		return printed(cmd, func(w *controlplane.WebhookCreated) string { return w.ID + "\t" + w.Secret })(svc.CreateWebhook(ctx, in))
	})
	create.Flags().String("url", "", "the endpoint (https://…)")
	create.Flags().StringSlice("events", []string{webhook.AllTypes}, "event types, comma-separated, or * for all: "+strings.Join(webhook.EventTypes, ", "))
	create.Flags().String("tenant", "", "only this tenant's events (and those of no tenant)")
	list := leaf("list", "List webhook subscriptions", cobra.NoArgs, func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "WEBHOOK\tURL\tEVENTS\tTENANT\tDISABLED\tFAILURES", func(s *webhook.Subscription) []any {
			disabled := "no"
			if s.Disabled {
				disabled = "yes: " + s.DisabledReason
			}
			return []any{s.ID, s.URL, strings.Join(s.EventTypes, ","), s.TenantID, disabled, s.FailureStreak}
		})(svc.Webhooks(ctx))
	})
	del := leaf("delete WEBHOOK_ID", "Delete a subscription; its pending deliveries fail", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		if err := svc.DeleteWebhook(ctx, args[0]); err != nil {
			return err
		}
		return output(cmd, map[string]any{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintln(w, "deleted", args[0]) })
	})
	deliveries := leaf("deliveries WEBHOOK_ID", "List a subscription's deliveries (state, attempts, last answer)", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		return listed(cmd, "DELIVERY\tSTATE\tATTEMPTS\tLAST STATUS\tLAST ERROR", func(d webhook.Delivery) []any {
			return []any{d.ID, d.State, d.Attempts, d.LastStatus, d.LastError}
		})(svc.WebhookDeliveries(ctx, args[0], 0))
	})
	redeliver := leaf("redeliver DELIVERY_ID", "Requeue a delivery, delivered or failed, due now", cobra.ExactArgs(1), func(ctx context.Context, svc controlplane.Service, cmd *cobra.Command, args []string) error {
		if err := svc.RedeliverWebhook(ctx, args[0]); err != nil {
			return err
		}
		return output(cmd, map[string]any{"requeued": args[0]}, func(w io.Writer) { fmt.Fprintln(w, "requeued", args[0]) })
	})
	return group("webhook", "Webhook subscriptions and their deliveries", create, list, del, deliveries, redeliver)
}

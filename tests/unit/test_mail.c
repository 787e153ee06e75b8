/* cv_mail: the emails leads really send — Cyrillic in every legacy
 * charset, HTML-only mail, attachments, replies with quoted history,
 * auto-replies and bounces — and what intake reads out of them; plus
 * broken input, which must give an error or a harmless result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_mail.h"

/* True when `text` is valid UTF-8 without control characters other than
 * tab and line feed: what intake can put into JSON as it is. */
static bool clean_utf8(const char *text)
{
    if (text == NULL)
        return true;
    if (!g_utf8_validate(text, -1, NULL))
        return false;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F)
            return false;
    return true;
}

/* Every string of a parsed mail is clean (checked on every parse). */
static void assert_all_clean(const cv_mail_t *mail)
{
    assert_true(clean_utf8(mail->message_id));
    assert_true(clean_utf8(mail->from_name));
    assert_true(clean_utf8(mail->from_address));
    assert_true(clean_utf8(mail->reply_to));
    assert_true(clean_utf8(mail->subject));
    assert_true(clean_utf8(mail->text));
    assert_true(clean_utf8(mail->signature));
    assert_true(clean_utf8(mail->company));
    assert_non_null(mail->subject);
    assert_non_null(mail->text);
    assert_non_null(mail->from_address);
    assert_non_null(mail->phones);
    for (char **phone = mail->phones; *phone != NULL; phone++)
        assert_true(clean_utf8(*phone));
}

/* Parses a message that must parse. */
static cv_mail_t *parse(const char *raw)
{
    char error[128] = "unset";
    cv_mail_t *mail = cv_mail_parse(raw, strlen(raw), error, sizeof(error));
    if (mail == NULL)
        fail_msg("mail refused: %s", error);
    assert_string_equal(error, "");
    assert_all_clean(mail);
    return mail;
}

/* Parses `size` bytes that may or may not be a message; either way the
 * result is sane. Returns the mail or NULL. */
static cv_mail_t *parse_anything(const char *raw, size_t size)
{
    char error[128] = "unset";
    cv_mail_t *mail = cv_mail_parse(raw, size, error, sizeof(error));
    if (mail == NULL)
        assert_true(strlen(error) > 0 && strcmp(error, "unset") != 0);
    else
        assert_all_clean(mail);
    return mail;
}

static size_t phone_count(const cv_mail_t *mail)
{
    size_t count = 0;
    while (mail->phones[count] != NULL)
        count++;
    return count;
}

/* (1) A plain UTF-8 request with a Russian signature. */
static const char *const mail_stroy_invest =
    "Return-Path: <Ivan.Petrov@Stroy-Invest.ru>\n"
    "From: =?UTF-8?B?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= "
    "<Ivan.Petrov@Stroy-Invest.ru>\n"
    "To: sales@conveyor.example\n"
    "Subject: =?UTF-8?Q?=D0=97=D0=B0=D0=BF=D1=80=D0=BE=D1=81_=D1=86=D0=B5=D0=BD"
    "=D1=8B_=D0=BD=D0=B0_=D0=B0=D1=80=D0=BC=D0=B0=D1=82=D1=83=D1=80=D1=83?=\n"
    "Date: Mon, 3 Jun 2024 10:15:00 +0300\n"
    "Message-ID: <CAF3x9q1a.5521@mail.stroy-invest.ru>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Добрый день!\n"
    "\n"
    "Просим выставить счёт на арматуру А500С 12 мм, 20 тонн,\n"
    "с доставкой в Казань до 1 июля. Бюджет 1 250 000 000 руб.\n"
    "\n"
    "С уважением,\n"
    "Иван Петров\n"
    "Менеджер по закупкам ООО «СтройИнвест»\n"
    "ИНН 7701234567\n"
    "Тел.: +7 (495) 123-45-67\n"
    "Моб.: 8 912 345 67 89\n"
    "www.stroy-invest.ru\n";

static void test_plain_utf8_request_with_signature(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_stroy_invest);
    assert_string_equal(mail->from_name, "Иван Петров");
    assert_string_equal(mail->from_address, "Ivan.Petrov@Stroy-Invest.ru");
    assert_null(mail->reply_to);
    assert_string_equal(mail->subject, "Запрос цены на арматуру");
    assert_string_equal(mail->message_id,
                        "CAF3x9q1a.5521@mail.stroy-invest.ru");
    assert_string_equal(
        mail->text,
        "Добрый день!\n"
        "\n"
        "Просим выставить счёт на арматуру А500С 12 мм, 20 тонн,\n"
        "с доставкой в Казань до 1 июля. Бюджет 1 250 000 000 руб.");
    assert_non_null(mail->signature);
    assert_true(strncmp(mail->signature, "С уважением,\nИван Петров\n",
                        strlen("С уважением,\nИван Петров\n")) == 0);
    assert_string_equal(mail->company, "ООО «СтройИнвест»");
    /* the INN is not a phone */
    assert_int_equal(phone_count(mail), 2);
    assert_string_equal(mail->phones[0], "+7 (495) 123-45-67");
    assert_string_equal(mail->phones[1], "8 912 345 67 89");
    assert_false(mail->auto_reply);
    assert_false(mail->bounce);
    assert_null(mail->not_a_lead_reason);
    assert_int_equal(mail->attachments, 0);
    cv_mail_destroy(&mail);
    assert_null(mail);
    cv_mail_destroy(&mail); /* NULL-safe */
    cv_mail_destroy(NULL);
}

/* (2) Outlook-style multipart/alternative in windows-1251: base64 text,
 * quoted-printable HTML, CRLF line ends, RFC 2047 subject and name. */
static const char *const mail_gefest =
    "From: =?windows-1251?Q?=CE=EB=FC=E3=E0_=D1=EC=E8=F0=ED=EE=E2=E0?= "
    "<o.smirnova@gefest-m.ru>\r\n"
    "Reply-To: zakupki@gefest-m.ru\r\n"
    "To: <info@conveyor.example>\r\n"
    "Subject: =?windows-1251?B?x+D/4urgIO3gIOPg5+7h5fLu7Q==?=\r\n"
    "Date: Tue, 4 Jun 2024 09:02:11 +0300\r\n"
    "Message-ID: <000001dab63c$1f2e3a40$5d8aaec0$@gefest-m.ru>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative;\r\n"
    "\tboundary=\"----=_NextPart_000_0001_01DAB655.447A7240\"\r\n"
    "X-Mailer: Microsoft Outlook 16.0\r\n"
    "\r\n"
    "This is a multipart message in MIME format.\r\n"
    "\r\n"
    "------=_NextPart_000_0001_01DAB655.447A7240\r\n"
    "Content-Type: text/plain;\r\n"
    "\tcharset=\"windows-1251\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "x+Tw4OLx8uLz6fLlIQoKzeDsIO3z5u37IDQwIO/"
    "u5OTu7e7iIOPg5+7h5fLu7eAgRDUwMCDt4CDu\r\n"
    "4frl6vIg4iDP7uTu6/zx6uUuCs/"
    "u5PHq4Obo8uUg9uXt8yDoIPHw7uroLgoK0SDz4uDm5e3o5ews\r\n"
    "Cs7r/"
    "OPgINHs6PDt7uLgCsDOIKvD5fTl8fItzLsK8uXrLiArNyAoNDk2KSA3NjUtNDMtMjEK\r\n"
    "\r\n"
    "------=_NextPart_000_0001_01DAB655.447A7240\r\n"
    "Content-Type: text/html;\r\n"
    "\tcharset=\"windows-1251\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<html><body><p>=C7=E4=F0=E0=E2=F1=F2=E2=F3=E9=F2=E5!</p><p>=CD=E0=EC "
    "=ED=F3=\r\n"
    "=E6=ED=FB 40 =EF=EE=E4=E4=EE=ED=EE=E2 =E3=E0=E7=EE=E1=E5=F2=EE=ED=E0 D500 "
    "=\r\n"
    "=ED=E0 =EE=E1=FA=E5=EA=F2 =E2 "
    "=CF=EE=E4=EE=EB=FC=F1=EA=E5.<br>=CF=EE=E4=F1=\r\n"
    "=EA=E0=E6=E8=F2=E5 =F6=E5=ED=F3 =E8 =F1=F0=EE=EA=E8.</p><p>=D1 "
    "=F3=E2=E0=E6=\r\n"
    "=E5=ED=E8=E5=EC,<br>=CE=EB=FC=E3=E0 =D1=EC=E8=F0=ED=EE=E2=E0<br>=C0=CE "
    "&laq=\r\n"
    "uo;=C3=E5=F4=E5=F1=F2-=CC&raquo;<br>=F2=E5=EB. "
    "+7&nbsp;(496)&nbsp;765-43-21=\r\n"
    "</p></body></html>\r\n"
    "\r\n"
    "------=_NextPart_000_0001_01DAB655.447A7240--\r\n";

static void test_windows_1251_alternative_prefers_plain_text(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_gefest);
    assert_string_equal(mail->from_name, "Ольга Смирнова");
    assert_string_equal(mail->from_address, "o.smirnova@gefest-m.ru");
    assert_string_equal(mail->reply_to, "zakupki@gefest-m.ru");
    assert_string_equal(mail->subject, "Заявка на газобетон");
    assert_string_equal(mail->message_id,
                        "000001dab63c$1f2e3a40$5d8aaec0$@gefest-m.ru");
    /* the text/plain alternative, decoded from base64 and windows-1251 */
    assert_string_equal(mail->text,
                        "Здравствуйте!\n"
                        "\n"
                        "Нам нужны 40 поддонов газобетона D500 на объект в "
                        "Подольске.\n"
                        "Подскажите цену и сроки.");
    assert_string_equal(mail->signature, "С уважением,\n"
                                         "Ольга Смирнова\n"
                                         "АО «Гефест-М»\n"
                                         "тел. +7 (496) 765-43-21");
    assert_string_equal(mail->company, "АО «Гефест-М»");
    assert_int_equal(phone_count(mail), 1);
    assert_string_equal(mail->phones[0], "+7 (496) 765-43-21");
    assert_int_equal(mail->attachments, 0); /* the HTML twin is no file */
    assert_null(mail->not_a_lead_reason);
    cv_mail_destroy(&mail);
}

/* (3) A koi8-r quoted-printable single part with a "-- " signature. */
static const char *const mail_kuznetsov =
    "From: =?koi8-r?B?88XSx8XKIOvV2s7Fw8/X?= <kuznetsov.sa@yandex.ru>\n"
    "To: rent@conveyor.example\n"
    "Subject: =?koi8-r?B?4dLFzsTBINTFyM7Jy8k=?=\n"
    "Message-Id: <1717401234.123456@mail.yandex.ru>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=\"KOI8-R\"\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "=E4=CF=C2=D2=D9=CA =C4=C5=CE=D8.\n"
    "\n"
    "=E9=CE=D4=C5=D2=C5=D3=D5=C5=D4 =C1=D2=C5=CE=C4=C1 "
    "=DC=CB=D3=CB=C1=D7=C1=D4=\n"
    "=CF=D2=C1-=D0=CF=C7=D2=D5=DA=DE=C9=CB=C1 =CE=C1 2 =CE=C5=C4=C5=CC=C9 =D7 "
    "=\n"
    "=C9=C0=CC=C5,\n"
    "=F7=CF=CC=CF=C7=CF=C4=D3=CB=C1=D1 =CF=C2=CC=C1=D3=D4=D8.\n"
    "\n"
    "--=20\n"
    "=F3=C5=D2=C7=C5=CA =EB=D5=DA=CE=C5=C3=CF=D7\n"
    "=E9=F0 =EB=D5=DA=CE=C5=C3=CF=D7 =F3.=E1.\n"
    "=D4=C5=CC. 8(800)555-35-35 =C4=CF=C2. 12\n";

static void test_koi8r_quoted_printable(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_kuznetsov);
    assert_string_equal(mail->from_name, "Сергей Кузнецов");
    assert_string_equal(mail->subject, "Аренда техники");
    assert_string_equal(
        mail->text, "Добрый день.\n"
                    "\n"
                    "Интересует аренда экскаватора-погрузчика на 2 недели в "
                    "июле,\n"
                    "Вологодская область.");
    assert_string_equal(mail->signature, "Сергей Кузнецов\n"
                                         "ИП Кузнецов С.А.\n"
                                         "тел. 8(800)555-35-35 доб. 12");
    assert_string_equal(mail->company, "ИП Кузнецов С.А.");
    assert_int_equal(phone_count(mail), 1);
    assert_string_equal(mail->phones[0], "8(800)555-35-35");
    assert_string_equal(mail->message_id, "1717401234.123456@mail.yandex.ru");
    cv_mail_destroy(&mail);
}

/* 8-bit Cyrillic that names no charset (old mailers): guessed. */
static void test_unlabelled_8bit_cyrillic_is_guessed(void **state)
{
    (void)state;
    const char *windows_1251 =
        "From: shop@profnastil-tver.ru\n"
        "Subject: price\n"
        "\n"
        "\xc4\xee\xe1\xf0\xfb\xe9 \xe4\xe5\xed\xfc, \xef\xf0\xe8\xf8\xeb\xe8"
        "\xf2\xe5 \xef\xf0\xe0\xe9\xf1 \xed\xe0 \xef\xf0\xee\xf4\xed\xe0\xf1"
        "\xf2\xe8\xeb.\n";
    const char *koi8r =
        "From: shop@profnastil-tver.ru\n"
        "Subject: price\n"
        "Content-Type: text/plain; charset=utf-8\n" /* a false label */
        "\n"
        "\xe4\xcf\xc2\xd2\xd9\xca \xc4\xc5\xce\xd8, \xd0\xd2\xc9\xdb\xcc\xc9"
        "\xd4\xc5 \xd0\xd2\xc1\xca\xd3 \xce\xc1 \xd0\xd2\xcf\xc6\xce\xc1\xd3"
        "\xd4\xc9\xcc.\n";
    const char *want = "Добрый день, пришлите прайс на профнастил.";
    cv_mail_t *mail = parse(windows_1251);
    assert_string_equal(mail->text, want);
    cv_mail_destroy(&mail);
    mail = parse(koi8r);
    assert_string_equal(mail->text, want);
    cv_mail_destroy(&mail);

    /* an unknown charset label on UTF-8 text keeps the text */
    mail = parse("From: a@b.ru\n"
                 "Content-Type: text/plain; charset=x-unknown-8bit\n"
                 "\n"
                 "Привет\n");
    assert_string_equal(mail->text, "Привет");
    cv_mail_destroy(&mail);
}

/* (4) HTML-only mail: entities, <br>, lists, styles, scripts, comments
 * and a quoted reply in a <blockquote>. */
static const char *const mail_html_only =
    "From: \"Марина Орлова\" <m.orlova@vektor-logistic.ru>\n"
    "Subject: Re: Доставка\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "<!DOCTYPE html><html><head><title>Re: =D0=94=D0=BE=D1=81=D1=82=D0=B0=D0=\n"
    "=B2=D0=BA=D0=B0</title><style>p { margin: 0 } .x>b { color: red "
    "}</style>\n"
    "<script>if (a < b && c > d) alert('<br>');</script></head>\n"
    "<body><!-- tracking <p>pixel</p> --><div>Добрый&nbsp;день!</div>\n"
    "<div>Нужна доставка &laquo;под ключ&raquo; &#8212; 3&nbsp;паллеты,\n"
    "   склад &#x2116;&nbsp;5 &amp; офис.<br>Варианты:</div>\n"
    "<ul><li>до&nbsp;среды</li><li>в пятницу</li></ul>\n"
    "<p>Цена &lt; 50&nbsp;000 &#8381;? &unknown; &amp</p>\n"
    "<div class=3D\"gmail_quote\"><div>пн, 3 июн. 2024 г. в 10:00, Продажи "
    "&lt;sales@conveyor.example&gt;:</div>\n"
    "<blockquote style=3D\"margin:0 0 0 .8ex\">Здравствуйте!<br>Наш тел. "
    "+7 (495) 000-00-00</blockquote></div>\n"
    "</body></html>\n";

static void test_html_only_becomes_text(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_html_only);
    assert_string_equal(mail->from_name, "Марина Орлова");
    assert_string_equal(mail->subject, "Re: Доставка");
    assert_string_equal(mail->text,
                        "Добрый день!\n"
                        "Нужна доставка «под ключ» — 3 паллеты, склад № 5 & "
                        "офис.\n"
                        "Варианты:\n"
                        "- до среды\n"
                        "- в пятницу\n"
                        "Цена < 50 000 ₽? &unknown; &amp");
    assert_null(mail->signature);
    /* the phone was only in the quoted history: it is ours, not theirs */
    assert_int_equal(phone_count(mail), 0);
    cv_mail_destroy(&mail);
}

/* (5) A request with a PDF attached: the file is counted and ignored. */
static const char *const mail_with_pdf =
    "From: Алексей Волков <volkov@teplo-dom.ru>\n"
    "Subject: "
    "=?utf-8?B?0KDQtdC60LLQuNC30LjRgtGLINC00LvRjyDQtNC+0LPQvtCy0L7RgNCw?=\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"b1_7c3a\"\n"
    "\n"
    "--b1_7c3a\n"
    "Content-Type: multipart/alternative; boundary=\"b2_7c3a\"\n"
    "\n"
    "--b2_7c3a\n"
    "Content-Type: text/plain; charset=utf-8; format=flowed\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Добрый день! Во вложении реквизиты для договора на поставку \n"
    "котлов.\n"
    "\n"
    "Спасибо!\n"
    "Алексей, +7 921 555 12 34\n"
    "--b2_7c3a\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>Добрый день! Во вложении реквизиты для договора.</p>\n"
    "--b2_7c3a--\n"
    "\n"
    "--b1_7c3a\n"
    "Content-Type: application/pdf; "
    "name=\"=?utf-8?B?0KDQtdC60LLQuNC30LjRgtGLLnBkZg==?=\"\n"
    "Content-Disposition: attachment; "
    "filename=\"=?utf-8?B?0KDQtdC60LLQuNC30LjRgtGLLnBkZg==?=\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "JVBERi0xLjQKMSAwIG9iaiA8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4gZW5kb2"
    "Jq\n"
    "CjIgMCBvYmogPDwgL1R5cGUgL1BhZ2VzIC9LaWRzIFtdIC9Db3VudCAwID4+"
    "IGVuZG9iagp0cmFp\n"
    "bGVyIDw8IC9Sb290IDEgMCBSID4+CiUlRU9GCg==\n"
    "--b1_7c3a\n"
    "Content-Type: image/png; name=\"logo.png\"\n"
    "Content-Disposition: inline; filename=\"logo.png\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "iVBORw0KGgo=\n"
    "--b1_7c3a--\n";

static void test_attachments_counted_and_ignored(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_with_pdf);
    assert_string_equal(mail->subject, "Реквизиты для договора");
    /* format=flowed: the soft break after "поставку" is joined */
    assert_string_equal(mail->text, "Добрый день! Во вложении реквизиты для "
                                    "договора на поставку котлов.");
    assert_string_equal(mail->signature, "Спасибо!\nАлексей, +7 921 555 12 34");
    assert_int_equal(phone_count(mail), 1);
    assert_string_equal(mail->phones[0], "+7 921 555 12 34");
    assert_int_equal(mail->attachments, 2); /* the PDF and the logo */
    assert_null(mail->company);
    cv_mail_destroy(&mail);
}

/* (6) An out-of-office reply is not a lead. */
static void test_auto_reply_is_not_a_lead(void **state)
{
    (void)state;
    const char *outlook =
        "From: =?utf-8?B?0JjQstCw0L0g0J/QtdGC0YDQvtCy?= "
        "<Ivan.Petrov@Stroy-Invest.ru>\n"
        "Subject: "
        "=?utf-8?Q?=D0=90=D0=B2=D1=82=D0=BE=D0=BC=D0=B0=D1=82=D0=B8=D1=87"
        "=D0=B5=D1=81=D0=BA=D0=B8=D0=B9_=D0=BE=D1=82=D0=B2=D0=B5=D1=82=3A_=D0"
        "=9A=D0=BE=D0=BC=D0=BC=D0=B5=D1=80=D1=87=D0=B5=D1=81=D0=BA=D0=BE=D0=B5"
        "_=D0=BF=D1=80=D0=B5=D0=B4=D0=BB=D0=BE=D0=B6=D0=B5=D0=BD=D0=B8=D0=B5?="
        "\n"
        "Auto-Submitted: auto-replied\n"
        "X-Auto-Response-Suppress: All\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Я в отпуске до 17 июня. По срочным вопросам: +7 (495) 123-45-00.\n";
    cv_mail_t *mail = parse(outlook);
    assert_string_equal(mail->subject,
                        "Автоматический ответ: Коммерческое предложение");
    assert_true(mail->auto_reply);
    assert_false(mail->bounce);
    assert_string_equal(mail->not_a_lead_reason, "auto_reply");
    cv_mail_destroy(&mail);

    /* the subject alone gives it away */
    mail = parse("From: sergey@example.ru\n"
                 "Subject: Out of Office: RE: Quote\n\nBack on Monday.\n");
    assert_string_equal(mail->not_a_lead_reason, "auto_reply");
    cv_mail_destroy(&mail);
    mail = parse("From: sergey@example.ru\nPrecedence: auto_reply\n\nx\n");
    assert_true(mail->auto_reply);
    cv_mail_destroy(&mail);

    /* "Auto-Submitted: no" and a product named "Автоответчик" are leads */
    mail = parse(
        "From: sergey@example.ru\n"
        "Auto-Submitted: no\n"
        "Subject: "
        "=?utf-8?B?0JDQstGC0L7QvtGC0LLQtdGC0YfQuNC6INC00LvRjyDQvtGE0LjRgdCw?=\n"
        "\n"
        "Сколько стоит?\n");
    assert_string_equal(mail->subject, "Автоответчик для офиса");
    assert_false(mail->auto_reply);
    assert_null(mail->not_a_lead_reason);
    cv_mail_destroy(&mail);
}

/* (7) A bounce from MAILER-DAEMON (multipart/report) is not a lead. */
static const char *const mail_bounce =
    "Return-Path: <>\n"
    "From: Mail Delivery System <MAILER-DAEMON@mx1.conveyor.example>\n"
    "To: sales@conveyor.example\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "Auto-Submitted: auto-replied\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"4F1C2A0B3E.1717401999/mx1.conveyor.example\"\n"
    "\n"
    "This is a MIME-encapsulated message.\n"
    "\n"
    "--4F1C2A0B3E.1717401999/mx1.conveyor.example\n"
    "Content-Description: Notification\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "This is the mail system at host mx1.conveyor.example.\n"
    "\n"
    "I'm sorry to have to inform you that your message could not\n"
    "be delivered to one or more recipients.\n"
    "\n"
    "<nobody@stroy-invest.ru>: host mx.stroy-invest.ru said: 550 5.1.1\n"
    "    User unknown\n"
    "\n"
    "--4F1C2A0B3E.1717401999/mx1.conveyor.example\n"
    "Content-Description: Delivery report\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx1.conveyor.example\n"
    "\n"
    "Final-Recipient: rfc822; nobody@stroy-invest.ru\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "\n"
    "--4F1C2A0B3E.1717401999/mx1.conveyor.example\n"
    "Content-Description: Undelivered Message\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sales@conveyor.example\n"
    "To: nobody@stroy-invest.ru\n"
    "Subject: Offer\n"
    "\n"
    "Our offer, +7 (495) 000-00-00\n"
    "\n"
    "--4F1C2A0B3E.1717401999/mx1.conveyor.example--\n";

static void test_bounce_is_not_a_lead(void **state)
{
    (void)state;
    cv_mail_t *mail = parse(mail_bounce);
    assert_true(mail->bounce);
    assert_true(mail->auto_reply); /* it says so too; bounce wins */
    assert_string_equal(mail->not_a_lead_reason, "bounce");
    assert_string_equal(mail->from_address,
                        "MAILER-DAEMON@mx1.conveyor.example");
    assert_int_equal(mail->attachments, 1); /* the returned message */
    assert_non_null(strstr(mail->text, "could not\nbe delivered"));
    cv_mail_destroy(&mail);

    /* a Russian bounce without a report part, from a bare MAILER-DAEMON */
    mail = parse("From: MAILER-DAEMON\n"
                 "Subject: =?utf-8?B?0J3QtSDQtNC+0YHRgtCw0LLQu9C10L3Qvg==?=\n"
                 "\n"
                 "Сообщение не доставлено.\n");
    assert_string_equal(mail->subject, "Не доставлено");
    assert_true(mail->bounce);
    assert_string_equal(mail->not_a_lead_reason, "bounce");
    cv_mail_destroy(&mail);

    /* postmaster writing about something else is a person */
    mail = parse("From: postmaster@teplo-dom.ru\nSubject: Счёт\n\nВопрос\n");
    assert_false(mail->bounce);
    cv_mail_destroy(&mail);
}

/* (8) Message-ID: without <>, or NULL when missing. */
static void test_message_id(void **state)
{
    (void)state;
    cv_mail_t *mail = parse("From: a@b.ru\n"
                            "Message-ID:\n"
                            " <20240603101500.GA1234@mx.example.ru>\n\nx\n");
    assert_string_equal(mail->message_id,
                        "20240603101500.GA1234@mx.example.ru");
    cv_mail_destroy(&mail);
    mail = parse("From: a@b.ru\n\nno id\n");
    assert_null(mail->message_id);
    cv_mail_destroy(&mail);
}

/* A reply: the quoted history (with our own phone in it) is cut off. */
static void test_reply_history_is_cut(void **state)
{
    (void)state;
    cv_mail_t *mail =
        parse("From: Ivan Petrov <ivan@stroy-invest.ru>\n"
              "Subject: Re: Offer\n"
              "Content-Type: text/plain; charset=utf-8\n"
              "\n"
              "Hello, we accept the offer. Please send the contract.\n"
              "\n"
              "On Mon, 3 Jun 2024 at 10:00, Conveyor Sales <\n"
              "sales@conveyor.example> wrote:\n"
              "\n"
              "> Dear Ivan,\n"
              "> our offer is attached.\n"
              ">\n"
              "> Sales, +7 (495) 000-00-00\n");
    assert_string_equal(
        mail->text, "Hello, we accept the offer. Please send the contract.");
    assert_int_equal(phone_count(mail), 0);
    cv_mail_destroy(&mail);

    /* Russian Thunderbird form, and Outlook's "-----Original Message-----" */
    mail = parse("From: ivan@stroy-invest.ru\n"
                 "\n"
                 "Согласны.\n"
                 "03.06.2024 10:00, Продажи пишет:\n"
                 "> Предлагаем...\n");
    assert_string_equal(mail->text, "Согласны.");
    cv_mail_destroy(&mail);
    mail = parse("From: ivan@stroy-invest.ru\n"
                 "\n"
                 "Agreed, budget 1 250 000 000 RUB.\n"
                 "Call me at 8 (912) 345-67-89.\n"
                 "\n"
                 "-----Original Message-----\n"
                 "From: Sales <sales@conveyor.example>\n"
                 "Sent: Monday, June 3, 2024 10:00 AM\n"
                 "Our offer. +7 (495) 000-00-00\n");
    assert_string_equal(mail->text, "Agreed, budget 1 250 000 000 RUB.\n"
                                    "Call me at 8 (912) 345-67-89.");
    /* from the body (there is no signature); the budget is no phone */
    assert_int_equal(phone_count(mail), 1);
    assert_string_equal(mail->phones[0], "8 (912) 345-67-89");
    cv_mail_destroy(&mail);
}

/* (9) Broken input: NULL with a reason, or a harmless result. */
static void test_garbage_refused_with_reason(void **state)
{
    (void)state;
    char error[64];
    assert_null(cv_mail_parse(NULL, 0, error, sizeof(error)));
    assert_string_equal(error, "empty message");
    assert_null(cv_mail_parse("", 0, error, sizeof(error)));
    assert_string_equal(error, "empty message");
    assert_null(cv_mail_parse("x", 1, NULL, 0)); /* no error buffer */

    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919u >> 3);
    assert_null(
        cv_mail_parse((const char *)junk, sizeof(junk), error, sizeof(error)));
    assert_true(strcmp(error, "not a mail message") == 0 ||
                strcmp(error, "no From address") == 0);

    const char *no_from = "To: sales@conveyor.example\nSubject: hi\n\nhello\n";
    assert_null(cv_mail_parse(no_from, strlen(no_from), error, sizeof(error)));
    assert_string_equal(error, "no From address");
    const char *no_at = "From: Ivan Petrov\n\nhello\n";
    assert_null(cv_mail_parse(no_at, strlen(no_at), error, sizeof(error)));
    assert_string_equal(error, "no From address");

    /* a short buffer gets a cut, terminated reason */
    char tiny[4];
    assert_null(cv_mail_parse(no_from, strlen(no_from), tiny, sizeof(tiny)));
    assert_string_equal(tiny, "no ");
}

static void test_malformed_structure_does_not_crash(void **state)
{
    (void)state;
    /* headers only, no body */
    cv_mail_t *mail = parse("From: a@b.ru");
    assert_string_equal(mail->text, "");
    assert_string_equal(mail->subject, "");
    assert_null(mail->signature);
    cv_mail_destroy(&mail);

    /* multipart without a boundary, and with one that never appears */
    const char *no_boundary = "From: a@b.ru\n"
                              "Content-Type: multipart/mixed\n\ntext\n";
    mail = parse_anything(no_boundary, strlen(no_boundary));
    cv_mail_destroy(&mail);
    mail = parse("From: a@b.ru\n"
                 "Content-Type: multipart/mixed; boundary=zz\n\n"
                 "--yy\nContent-Type: text/plain\n\nlost\n");
    cv_mail_destroy(&mail);

    /* NUL bytes, broken UTF-8, bad base64 and QP */
    const char with_nul[] = "From: a@b.ru\nSubject: a\x00z\n\nbefore\x00"
                            "after \xff\xfe \xed\xa0\x80\n";
    mail = parse_anything(with_nul, sizeof(with_nul) - 1);
    assert_non_null(mail);
    cv_mail_destroy(&mail);
    mail = parse("From: a@b.ru\n"
                 "Content-Type: text/plain; charset=windows-1251\n"
                 "Content-Transfer-Encoding: base64\n\n"
                 "!!!*** not base64 ===\n");
    cv_mail_destroy(&mail);
    mail = parse("From: a@b.ru\n"
                 "Content-Type: text/html; charset=utf-8\n"
                 "Content-Transfer-Encoding: quoted-printable\n\n"
                 "=ZZ=D0=\n<a href=\"x>unclosed &#xFFFFFFFFFF; &#0; &#55296; "
                 "<script>never closed");
    assert_true(clean_utf8(mail->text));
    cv_mail_destroy(&mail);
}

static void test_deep_nesting_and_huge_lines(void **state)
{
    (void)state;
    /* 10,000 nested multiparts: the body is below the depth looked at */
    GString *deep =
        g_string_new("From: a@b.ru\n"
                     "Content-Type: multipart/mixed; boundary=b0\n\n");
    for (int i = 1; i < 10000; i++)
        g_string_append_printf(deep,
                               "--b%d\nContent-Type: multipart/mixed; "
                               "boundary=b%d\n\n",
                               i - 1, i);
    g_string_append(deep, "--b9999\nContent-Type: text/plain\n\ndeep\n");
    cv_mail_t *mail = parse_anything(deep->str, deep->len);
    assert_non_null(mail);
    assert_string_equal(mail->text, "");
    cv_mail_destroy(&mail);
    g_string_free(deep, TRUE);

    /* 10,000 sibling attachments */
    GString *wide =
        g_string_new("From: a@b.ru\n"
                     "Content-Type: multipart/mixed; boundary=w\n\n"
                     "--w\nContent-Type: text/plain\n\nsee files\n");
    for (int i = 0; i < 10000; i++)
        g_string_append(wide,
                        "--w\nContent-Type: application/octet-stream\n\nx\n");
    g_string_append(wide, "--w--\n");
    mail = parse(wide->str);
    assert_string_equal(mail->text, "see files");
    assert_int_equal(mail->attachments, 10000);
    cv_mail_destroy(&mail);
    g_string_free(wide, TRUE);

    /* a 4 MiB header line and a 4 MiB body line of digits and markup */
    GString *huge = g_string_new("From: a@b.ru\nSubject: ");
    for (int i = 0; i < 4 * 1024 * 1024; i++)
        g_string_append_c(huge, (char)('a' + i % 26));
    g_string_append(huge, "\nContent-Type: text/html\n\n");
    for (int i = 0; i < 1024 * 1024; i++)
        g_string_append(huge, i % 3 ? "1 2-" : "<b>");
    g_string_append(huge, "\n");
    mail = parse(huge->str);
    assert_int_equal(strlen(mail->subject), 4 * 1024 * 1024);
    cv_mail_destroy(&mail);
    g_string_free(huge, TRUE);
}

/* Mutations of real samples: whatever comes back is clean. */
static void test_mutated_samples_stay_clean(void **state)
{
    (void)state;
    const char *samples[] = {mail_stroy_invest, mail_gefest,   mail_kuznetsov,
                             mail_html_only,    mail_with_pdf, mail_bounce};
    uint32_t seed = 12345;
    for (size_t s = 0; s < G_N_ELEMENTS(samples); s++) {
        size_t size = strlen(samples[s]);
        char *copy = malloc(size);
        assert_non_null(copy);
        for (int round = 0; round < 300; round++) {
            memcpy(copy, samples[s], size);
            int flips = 1 + round % 16;
            for (int f = 0; f < flips; f++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % size;
                seed = seed * 1103515245u + 12345u;
                copy[at] = (char)(seed >> 16);
            }
            seed = seed * 1103515245u + 12345u;
            size_t cut = round % 5 == 0 ? (seed >> 8) % size + 1 : size;
            cv_mail_t *mail = parse_anything(copy, cut);
            cv_mail_destroy(&mail);
        }
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_utf8_request_with_signature),
        cmocka_unit_test(test_windows_1251_alternative_prefers_plain_text),
        cmocka_unit_test(test_koi8r_quoted_printable),
        cmocka_unit_test(test_unlabelled_8bit_cyrillic_is_guessed),
        cmocka_unit_test(test_html_only_becomes_text),
        cmocka_unit_test(test_attachments_counted_and_ignored),
        cmocka_unit_test(test_auto_reply_is_not_a_lead),
        cmocka_unit_test(test_bounce_is_not_a_lead),
        cmocka_unit_test(test_message_id),
        cmocka_unit_test(test_reply_history_is_cut),
        cmocka_unit_test(test_garbage_refused_with_reason),
        cmocka_unit_test(test_malformed_structure_does_not_crash),
        cmocka_unit_test(test_deep_nesting_and_huge_lines),
        cmocka_unit_test(test_mutated_samples_stay_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
